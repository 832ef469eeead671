//! Resource faults on a target: the command that puts each one in place and the command that
//! undoes it. Everything a fault changes lives inside the target (its cgroups, its network
//! namespace, its mount namespace, a transient unit), so removing the target removes every
//! trace of it whatever way the lab ends; undoing is for the scenario's own story (`heal`,
//! `duration`) and for the scenarios that use a shared target after it.
//!
//! Why each mechanism (measured on this host's cgroup v1 targets, systemd 252 and 257):
//! * `oom`: lowering a cgroup v1 memory limit below what the unit uses fails with EBUSY
//!   instead of OOM-killing, so the lab sets the limit (`systemctl set-property --runtime
//!   MemoryMax=`, which systemd 252/257 write to `memory.limit_in_bytes` on v1) and then puts
//!   hogs (four perl processes holding a quarter each of more than the limit) into the unit's
//!   cgroup in every hierarchy. The kernel's OOM killer then acts inside that cgroup. The unit's main process
//!   is made its choice (`oom_score_adj` 1000, which raising needs no capability), as in a
//!   real leak, where the service itself is the big process.
//! * `network`: nftables rules in a table of the fault's own, in the target's network
//!   namespace (loss is `numgen random`, no netem needed); `delay` needs the kernel's netem
//!   (and htb) queueing disciplines; this host's kernel has no netem (nor prio), so the fault
//!   ends the scenario with that reason rather than running without a delay. The delay path
//!   (htb + netem, packets steered by `meta priority`) is therefore not exercised here.
//! * `disk-full`: a tmpfs just large enough for what the directory holds, filled to the last
//!   block, moved over the directory; undone by unmounting it (lazily: the unit may hold it).
//! * `cpu-starve`: systemd accepts `CPUQuota=` but cannot enforce it here (the host mounts the
//!   cpu and cpuacct controllers apart, so the target's systemd has no cpu hierarchy: measured,
//!   `cpu.cfs_quota_us` never appears), and lowering a priority cannot be undone without
//!   CAP_SYS_NICE. So the unit's threads are pinned to one CPU and [`BURNERS`] busy loops of a
//!   transient unit are pinned there too: at equal weight the unit gets about 1/50 of one CPU
//!   (measured with the lab's script at load average 15: a busy loop got 4 ticks in 2 s
//!   instead of 158; with 19 loops it got 8 of 152, too little of a margin on a loaded host,
//!   where the unstarved unit is slow too). Undone by stopping the burners and restoring
//!   each thread's affinity. The cost: one core of the host is busy for the fault's life.
//!   Tried and dropped: stopping the unit's processes (SIGSTOP) for 95 ms of every 100 ms,
//!   which costs nothing, but on this loaded 2-core host a throttled busy loop still got 26
//!   ticks in 2 s against 42 unthrottled: too weak to starve anything.

use std::net::IpAddr;

use crate::scenario::{Direction, NetAction, NetworkFault, ResourceFault, ResourceKind};

/// Busy loops of a `cpu-starve` fault, sharing one CPU with the unit.
pub const BURNERS: u32 = 49;
/// How much more than the limit the `oom` hog asks for: the limit is crossed whatever the
/// unit itself uses.
pub const HOG_MARGIN: u64 = 16 * 1024 * 1024;
/// How many processes share the `oom` hog's memory: each must stay far below the main
/// process in the OOM killer's eyes (see the script).
pub const HOGS: u32 = 4;
/// `disk-full` copies the directory into memory: at most this much.
pub const DISK_FULL_MAX_KIB: u64 = 64 * 1024;

/// Exit codes of the scripts that mean "this fault cannot be put in place here", with the
/// reason on stderr; any other failure is the lab's own.
pub const CANNOT: i64 = 3;
/// `delay`: the kernel has no netem.
pub const NO_NETEM: i64 = 7;
/// `oom`: the hog got all it asked for: the limit is not enforced.
pub const NOT_ENFORCED: i64 = 6;

/// A command run inside the target: `sh -c SCRIPT sh ARGS...`.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub script: &'static str,
    pub args: Vec<String>,
}

impl Command {
    pub fn argv(&self) -> Vec<&str> {
        let mut argv = vec!["sh", "-c", self.script, "sh"];
        argv.extend(self.args.iter().map(String::as_str));
        argv
    }
}

/// A name for the fault's own objects in the target (nft table, transient unit, state file):
/// the scenario's name and the step, `[a-z0-9_]` only (nft's rule for table names).
pub fn tag(scenario: &str, step: usize) -> String {
    let clean: String = scenario.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
    format!("unitlab_{clean}_{}", step + 1)
}

/// How to put a fault in place. `unit` is the installed unit name. Undoing needs what the
/// injection printed (`oom`: the previous limit), so [`undo`] takes that output.
pub fn inject(fault: &ResourceFault, unit: Option<&str>, tag: &str) -> Command {
    let unit = unit.unwrap_or("").to_string();
    match &fault.kind {
        ResourceKind::Oom { limit } => {
            let limit_text = limit.map(|l| l.to_string()).unwrap_or_default();
            // The unit's own limit: the hog asks for the margin beyond what it reads then.
            Command { script: OOM_INJECT, args: vec![unit, limit_text, HOG_MARGIN.to_string(), HOGS.to_string()] }
        }
        ResourceKind::Network(n) => {
            let delay = match n.action {
                NetAction::Delay(d) => format!("{}us", d.as_micros()),
                _ => String::new(),
            };
            Command { script: NETWORK_INJECT, args: vec![nft_ruleset(n, tag), delay] }
        }
        ResourceKind::DiskFull { path } => {
            Command { script: DISK_FULL_INJECT, args: vec![path.display().to_string(), DISK_FULL_MAX_KIB.to_string()] }
        }
        ResourceKind::CpuStarve => Command { script: CPU_STARVE_INJECT, args: vec![unit, tag.replace('_', "-"), BURNERS.to_string()] },
    }
}

/// How to undo a fault; `injected` is what [`inject`] printed. Safe to run when the fault has
/// already let go (each script checks before it acts).
pub fn undo(fault: &ResourceFault, unit: Option<&str>, tag: &str, injected: &str) -> Command {
    let unit = unit.unwrap_or("").to_string();
    match &fault.kind {
        ResourceKind::Oom { limit } => {
            let old = injected.lines().find_map(|l| l.strip_prefix("old=")).unwrap_or("infinity").to_string();
            // A unit whose own limit was used is left as it is.
            let restore = if limit.is_some() { old } else { String::new() };
            Command { script: OOM_UNDO, args: vec![unit, restore] }
        }
        ResourceKind::Network(n) => {
            let delayed = matches!(n.action, NetAction::Delay(_));
            Command { script: NETWORK_UNDO, args: vec![tag.to_string(), if delayed { "delay".into() } else { String::new() }] }
        }
        ResourceKind::DiskFull { path } => Command { script: DISK_FULL_UNDO, args: vec![path.display().to_string()] },
        ResourceKind::CpuStarve => Command { script: CPU_STARVE_UNDO, args: vec![tag.replace('_', "-")] },
    }
}

/// The nftables table of a `network` fault: its own table, so that undoing is deleting it and
/// never touches another fault's rules.
pub fn nft_ruleset(n: &NetworkFault, tag: &str) -> String {
    // What a packet must match, seen from the target: arriving (to the port, from the peer)
    // or leaving (from the port, to the peer).
    let matches = |incoming: bool| {
        let mut m = Vec::new();
        if let Some(peer) = n.peer {
            let family = if matches!(peer, IpAddr::V4(_)) { "ip" } else { "ip6" };
            m.push(format!("{family} {} {peer}", if incoming { "saddr" } else { "daddr" }));
        }
        if let Some(port) = n.port {
            m.push(format!("tcp {} {port}", if incoming { "dport" } else { "sport" }));
        }
        m.join(" ")
    };
    let verdicts = |m: &str| -> Vec<String> {
        match n.action {
            NetAction::Drop => vec![format!("{m} drop")],
            NetAction::Loss(p) => vec![format!("{m} numgen random mod 100 < {p} drop")],
            // A TCP reset makes a client see "connection refused", as when nothing listens;
            // anything else gets the ICMP error. The resets and ICMP errors the rules send
            // themselves leave through the output hook and match it too: they are let
            // through, or the refusal would turn into a silent drop.
            NetAction::Reject if n.port.is_some() => vec![format!("{m} tcp flags & rst == 0 reject with tcp reset")],
            NetAction::Reject => vec![
                format!("{m} meta l4proto tcp tcp flags & rst == 0 reject with tcp reset"),
                format!("{m} meta l4proto != {{ tcp, icmp, icmpv6 }} reject"),
            ],
            NetAction::Delay(_) => vec![format!("{m} meta priority set 1:2")],
        }
    };
    let (input, output) = match (n.action, n.direction) {
        // netem delays what leaves an interface: the target's replies and requests.
        (NetAction::Delay(_), _) => (false, true),
        (_, Direction::In) => (true, false),
        (_, Direction::Out) => (false, true),
        (_, Direction::Both) => (true, true),
    };
    let mut text = format!("table inet {tag} {{\n");
    for (on, chain, incoming) in [(input, "input", true), (output, "output", false)] {
        if on {
            text.push_str(&format!("  chain {chain} {{\n    type filter hook {chain} priority -10; policy accept;\n"));
            for rule in verdicts(&matches(incoming)) {
                text.push_str(&format!("    {rule}\n"));
            }
            text.push_str("  }\n");
        }
    }
    text.push_str("}\n");
    text
}

/// Args: unit, limit in bytes (empty: the unit's own), margin, hogs. Prints `old=` the previous
/// MemoryMax. Exit [`CANNOT`] when the unit has no main process, [`NOT_ENFORCED`] when the
/// hog got everything it asked for.
const OOM_INJECT: &str = r#"unit=$1 limit=$2 margin=$3 hogs=$4
main=$(systemctl show -P MainPID "$unit") || exit 2
if [ "${main:-0}" -le 0 ]; then echo "$unit has no main process: nothing in it can run out of memory" >&2; exit 3; fi
old=$(systemctl show -P MemoryMax "$unit")
echo "old=$old"
if [ -n "$limit" ]; then
  systemctl set-property --runtime "$unit" MemoryMax="$limit" || exit 2
else
  limit=$old
  case "$limit" in ''|infinity) echo "$unit has no memory limit (MemoryMax=$old): give the fault a limit" >&2; exit 3;; esac
fi
# This shell joins the unit's cgroup in every hierarchy the main process is in (v1: systemd,
# memory, pids, ...; v2: the one), so that the hogs' memory is charged to the unit.
while IFS=: read -r id ctrl path; do
  [ "$path" = / ] && continue
  ctrl=${ctrl#name=}
  if [ -z "$ctrl" ]; then
    if [ -e /sys/fs/cgroup/cgroup.controllers ]; then dir=/sys/fs/cgroup; else dir=/sys/fs/cgroup/unified; fi
  else dir=/sys/fs/cgroup/$ctrl; fi
  echo $$ > "$dir$path/cgroup.procs" || { echo "could not join $dir$path" >&2; exit 2; }
done < /proc/$main/cgroup
adj=$(cat /proc/$main/oom_score_adj)
echo 1000 > /proc/$main/oom_score_adj
# HOGS processes, each holding an equal share of limit + margin until killed: together they
# cross the limit, and each alone stays far below the main process's badness (its RSS plus the
# whole limit, at oom_score_adj 1000), so the OOM killer chooses the main process, as in a real
# leak. A single hog of the whole size lost that choice to a small (statically linked) main
# process: its own badness is the limit too, plus its shared libraries' pages.
each=$(( (limit + margin) / hogs ))
dir=$(mktemp -d)
pids=
i=0
while [ $i -lt "$hogs" ]; do
  i=$((i + 1))
  perl -e '$x = "\0" x $ARGV[0]; open(F, ">", $ARGV[1]) and close(F); sleep 600' "$each" "$dir/held.$i" &
  pids="$pids $!"
done
# Until the main process is gone (the fault worked), every hog holds its share with the main
# process alive (the limit is not enforced), or a hog died and the main process outlived it by
# 2 s (the OOM killer chose a hog): polled every 20 ms, for at most 30 s. The OOM killer kills
# the main process first and then, as its small RSS frees too little, a hog; the main process
# counts as gone once it is a zombie or dead (systemd may reap it late on a loaded host).
dead() { st=$(sed -n 's/^State:[[:space:]]*\([A-Za-z]\).*/\1/p' /proc/$1/status 2>/dev/null); case $st in ''|Z|X) return 0;; esac; return 1; }
gone() { dead $main; }
rc=4 n=0 since=
while [ $n -lt 1500 ]; do
  if gone; then rc=0; break; fi
  held=$(ls "$dir" | wc -l)
  if [ "$held" -ge "$hogs" ]; then rc=6; break; fi
  if [ -z "$since" ]; then
    for p in $pids; do dead $p && since=$n; done
  elif [ $((n - since)) -ge 100 ]; then rc=5; break; fi
  sleep 0.02; n=$((n + 1))
done
kill $pids 2>/dev/null
rm -rf "$dir"
gone || echo "$adj" > /proc/$main/oom_score_adj 2>/dev/null
case $rc in
  6) echo "$hogs processes of $unit held $((each * hogs)) bytes under MemoryMax=$limit and were not stopped: the limit is not enforced" >&2; exit 6;;
  5) echo "the OOM killer chose a hog in $unit, not its main process $main" >&2; exit 3;;
  4) echo "neither an OOM kill in $unit nor every hog holding its share within 30 s" >&2; exit 3;;
esac
exit 0"#;

/// Args: unit, the MemoryMax to restore (empty: leave it).
const OOM_UNDO: &str = r#"unit=$1 old=$2
[ -z "$old" ] && exit 0
systemctl set-property --runtime "$unit" MemoryMax="$old""#;

/// Args: the nft ruleset, the netem delay (empty: none). A delayed packet is steered by its
/// priority (`meta priority set 1:2`, set by the rules) into class 1:2 of an htb qdisc, whose
/// leaf is netem: htb reads the class from the priority itself, so no tc filter is needed.
const NETWORK_INJECT: &str = r#"rules=$1 delay=$2
if [ -n "$delay" ]; then
  # netem first, on its own: without it there is nothing to put in place.
  if ! err=$(tc qdisc add dev lo root handle 1: netem delay 1ms 2>&1); then echo "$err" >&2; exit 7; fi
  tc qdisc del dev lo root
  for dev in $(ls /sys/class/net); do
    if ! { tc qdisc add dev "$dev" root handle 1: htb default 1 \
        && tc class add dev "$dev" parent 1: classid 1:1 htb rate 10gbit \
        && tc class add dev "$dev" parent 1: classid 1:2 htb rate 10gbit \
        && tc qdisc add dev "$dev" parent 1:2 handle 20: netem delay "$delay"; } 2>/dev/null; then
      for d in $(ls /sys/class/net); do tc qdisc del dev "$d" root 2>/dev/null; done
      echo "tc: cannot set up the delay on $dev (htb and netem)" >&2; exit 2
    fi
  done
fi
printf '%s' "$rules" | nft -f - || exit 2"#;

/// Args: the table, `delay` when netem was added.
const NETWORK_UNDO: &str = r#"table=$1 delay=$2
if nft list table inet "$table" >/dev/null 2>&1; then nft delete table inet "$table" || exit 2; fi
if [ -n "$delay" ]; then
  for dev in $(ls /sys/class/net); do
    if tc qdisc show dev "$dev" | grep -q "qdisc htb 1: root"; then tc qdisc del dev "$dev" root || exit 2; fi
  done
fi
exit 0"#;

/// Args: the directory, the most KiB it may hold.
const DISK_FULL_INJECT: &str = r#"d=$1 max=$2
if [ ! -d "$d" ]; then echo "$d is not a directory in the target: create it first (ExecStartPre=, StateDirectory= or [[files]])" >&2; exit 3; fi
if awk -v d="$d" '$1 == "unitlab-disk-full" && $2 == d { found = 1 } END { exit !found }' /proc/mounts; then echo "$d is full already" >&2; exit 3; fi
used=$(du -sk "$d" | cut -f1)
if [ "$used" -gt "$max" ]; then echo "$d holds ${used} KiB; disk-full copies it into memory, at most ${max} KiB" >&2; exit 3; fi
mkdir -p /run/unitlab
t=$(mktemp -d /run/unitlab/disk-full.XXXXXX) || exit 2
mode=$(stat -c %a "$d") uid=$(stat -c %u "$d") gid=$(stat -c %g "$d")
mount -t tmpfs -o "size=$((used + 64))k,mode=$mode,uid=$uid,gid=$gid" unitlab-disk-full "$t" || { rmdir "$t"; exit 2; }
cp -a "$d"/. "$t"/ || { umount "$t"; rmdir "$t"; exit 2; }
# Fill to the last block: after this a write that needs a new block gets ENOSPC.
dd if=/dev/zero of="$t/.unitlab-disk-full" bs=4k 2>/dev/null
mount --move "$t" "$d" || { umount "$t"; rmdir "$t"; exit 2; }
rmdir "$t"
df -k "$d" | tail -1"#;

/// Args: the directory.
const DISK_FULL_UNDO: &str = r#"d=$1
if awk -v d="$d" '$1 == "unitlab-disk-full" && $2 == d { found = 1 } END { exit !found }' /proc/mounts; then umount -l "$d" || exit 2; fi
exit 0"#;

/// Args: unit, the transient unit's name stem, the number of burners. Saves each thread's
/// affinity for the undo in /run/unitlab.
const CPU_STARVE_INJECT: &str = r#"unit=$1 tag=$2 burners=$3
cg=$(systemctl show -P ControlGroup "$unit") || exit 2
for dir in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified /sys/fs/cgroup; do
  [ -n "$cg" ] && [ -e "$dir$cg/cgroup.procs" ] && { procs=$dir$cg/cgroup.procs; break; }
done
pids=$(cat "${procs:-/dev/null}" 2>/dev/null)
if [ -z "$pids" ]; then echo "$unit has no processes to starve" >&2; exit 3; fi
first=$(echo "$pids" | head -n 1)
cpu=$(taskset -cp "$first" | sed 's/.*: //; s/[,-].*//')
mkdir -p /run/unitlab
state=/run/unitlab/$tag.affinity
: > "$state"
pinned=0
for pid in $pids; do
  # A process may end between the listing and here (a short-lived child): skip it.
  for task in /proc/$pid/task/*; do
    [ -e "$task" ] || continue
    tid=${task##*/}
    mask=$(taskset -p "$tid" 2>/dev/null | sed 's/.*: //')
    [ -n "$mask" ] || continue
    taskset -p -c "$cpu" "$tid" >/dev/null 2>&1 || continue
    echo "$tid $mask" >> "$state"
    pinned=$((pinned + 1))
  done
done
if [ "$pinned" -eq 0 ]; then echo "$unit has no processes to starve (they all ended)" >&2; exit 3; fi
systemd-run --quiet --unit="$tag" -p CPUAffinity="$cpu" -p KillMode=control-group \
  /bin/sh -c 'i=0; while [ $i -lt "$1" ]; do (while :; do :; done) & i=$((i + 1)); done; wait' sh "$burners" || exit 2
echo "cpu $cpu, $pinned threads""#;

/// Args: the transient unit's name stem.
const CPU_STARVE_UNDO: &str = r#"tag=$1
systemctl stop "$tag.service" 2>/dev/null
state=/run/unitlab/$tag.affinity
if [ -e "$state" ]; then
  while read -r tid mask; do [ -e "/proc/$tid" ] && taskset -p "$mask" "$tid" >/dev/null 2>&1; done < "$state"
  rm -f "$state"
fi
exit 0"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn net(action: NetAction, port: Option<u16>, peer: Option<&str>, direction: Direction) -> NetworkFault {
        NetworkFault { action, port, peer: peer.map(|p| p.parse().unwrap()), direction }
    }

    #[test]
    fn a_port_is_matched_by_destination_coming_in_and_by_source_going_out() {
        let text = nft_ruleset(&net(NetAction::Drop, Some(8081), None, Direction::Both), "unitlab_x_2");
        assert_eq!(
            text,
            "table inet unitlab_x_2 {\n  chain input {\n    type filter hook input priority -10; policy accept;\n    tcp dport 8081 drop\n  }\n  chain output {\n    type filter hook output priority -10; policy accept;\n    tcp sport 8081 drop\n  }\n}\n"
        );
    }

    #[test]
    fn peers_loss_reject_and_direction() {
        let loss = nft_ruleset(&net(NetAction::Loss(30), None, Some("172.17.0.1"), Direction::In), "t");
        assert!(loss.contains("ip saddr 172.17.0.1 numgen random mod 100 < 30 drop"), "{loss}");
        assert!(!loss.contains("output"), "{loss}");
        let reject = nft_ruleset(&net(NetAction::Reject, None, Some("fd00::1"), Direction::Out), "t");
        assert!(reject.contains("ip6 daddr fd00::1 meta l4proto tcp tcp flags & rst == 0 reject with tcp reset"), "{reject}");
        assert!(reject.contains("ip6 daddr fd00::1 meta l4proto != { tcp, icmp, icmpv6 } reject"), "{reject}");
        assert!(!reject.contains("input"), "{reject}");
        let delay = nft_ruleset(&net(NetAction::Delay(std::time::Duration::from_millis(5)), Some(80), None, Direction::Both), "t");
        assert!(delay.contains("tcp sport 80 meta priority set 1:2") && !delay.contains("input"), "{delay}");
    }

    #[test]
    fn tags_are_nft_names() {
        assert_eq!(tag("net-drop", 2), "unitlab_net_drop_3");
    }

    #[test]
    fn oom_undo_restores_only_a_limit_the_fault_set() {
        let f = |limit| ResourceFault { name: None, unit: None, kind: ResourceKind::Oom { limit }, duration: None };
        assert_eq!(undo(&f(Some(1 << 26)), Some("u"), "t", "old=infinity\n").args, vec!["u".to_string(), "infinity".into()]);
        assert_eq!(undo(&f(None), Some("u"), "t", "old=33554432\n").args, vec!["u".to_string(), String::new()]);
    }
}
