# Sourced by bench/run and bench/soak: how busy the machine's cores were while a figure was
# measured, so that a wall time says whether the cores (near 100%) or the waiting (systemd's
# timers) bound it.

# Busy CPU time of the whole machine so far, in jiffies: /proc/stat's user, nice, system, irq,
# softirq and steal (everything but idle and iowait).
busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }

# `cpu_share B0 WALL`: the busy time since the reading B0 over WALL seconds of wall time.
cpu_share() { python3 -c "c = ($(busy) - $1) / $(getconf CLK_TCK); print(f'{c:.0f} CPU-s busy ({100 * c / $2 / $(nproc):.0f}% of $(nproc) cores)')"; }
