//! Journal normalisation for snapshots: one redaction layer, so that repeated runs give
//! byte-identical text. Redacted: PIDs (also inside message text), "Consumed ..." resource
//! figures, hex ids (invocation, boot, machine), and any timestamp; the journal's own time,
//! cursor, hostname and id fields are never printed in the first place. Left out: the racy
//! clean-up SIGKILL lines after a main process died (see `is_cleanup_kill`), all but the first
//! of a run of "Killing process" lines (the rest name whatever else the cgroup held at that
//! instant), and repeats of a unit-file warning (re-logged at every daemon-reload).

/// One journal entry as journalctl's JSON output gives it (field name -> value; binary
/// fields are kept as journalctl encodes them).
pub type JournalEntry = serde_json::Map<String, serde_json::Value>;

/// Whether an entry is one of systemd's own lines (PID 1) worth a snapshot. The service's own
/// lines are left out of snapshots: their order against PID 1's varies from run to run (two
/// writers racing into journald). The resource-accounting line varies with load.
pub fn is_manager_line(entry: &JournalEntry) -> bool {
    let pid1 = entry.get("_PID").and_then(|p| p.as_str()) == Some("1");
    let resources = entry.get("MESSAGE_ID").and_then(|p| p.as_str()) == Some(crate::observe::message_id::UNIT_RESOURCES);
    pid1 && !resources
}

/// Whether a line is systemd SIGKILLing what is left of a unit's processes after its main
/// process died (between "Main process exited" and the unit's result). Whether such a line
/// appears, and with which process name ("handler", "n/a"), depends on how far the kernel got
/// tearing the dead process's threads down: measured to vary run to run, so snapshots leave
/// these lines out. A SIGKILL that is a decision (a stop timeout) comes before the main
/// process exits and is kept.
fn is_cleanup_kill(message: &str, main_exited: bool) -> bool {
    main_exited && message.contains("Killing process ") && message.ends_with("with signal SIGKILL.")
}

/// The signal of a "Killing process N (comm) with signal SIG." line.
fn kill_signal(message: &str) -> Option<&str> {
    if !message.contains("Killing process ") {
        return None;
    }
    message.rsplit_once("with signal ").map(|(_, sig)| sig.trim_end_matches('.'))
}

/// Render entries as `IDENTIFIER: MESSAGE` lines, redacted.
pub fn normalise(entries: &[JournalEntry]) -> String {
    let mut out = String::new();
    // Units whose main process exited and whose result is not logged yet.
    let mut exited: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut seen_load_warnings: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut last_kill: Option<(String, String)> = None;
    for e in entries {
        let Some(message) = e.get("MESSAGE").and_then(|m| m.as_str()) else { continue };
        let unit = crate::observe::entry_unit(e).unwrap_or("").to_string();
        if message.contains("Main process exited") {
            exited.insert(unit.clone());
        } else if message.contains("Failed with result") || message.contains("Deactivated successfully") || message.ends_with(": Succeeded.") {
            // ("Succeeded." is 247's wording of "Deactivated successfully.")
            exited.remove(&unit);
        }
        if is_cleanup_kill(message, exited.contains(&unit)) {
            continue;
        }
        // systemd signals the main process first, then whatever else is in the unit's cgroup
        // at that instant; for a shell sidecar that is a curl one time and a sleep the next.
        // Only the first line of such a run is kept.
        if let Some(signal) = kill_signal(message) {
            if last_kill.as_ref() == Some(&(unit.clone(), signal.to_string())) {
                continue;
            }
            last_kill = Some((unit.clone(), signal.to_string()));
        } else {
            last_kill = None;
        }
        // Unit-file warnings ("/etc/systemd/system/x.service:3: Failed to parse ...") are
        // logged again at every daemon-reload, including reloads done for OTHER scenarios on a
        // shared target: only the first, from this unit's own load, belongs to its story.
        if message.starts_with('/') && !seen_load_warnings.insert(message.to_string()) {
            continue;
        }
        let ident = e.get("SYSLOG_IDENTIFIER").and_then(|m| m.as_str()).unwrap_or("?");
        out.push_str(&redact_identifier(ident));
        out.push_str(": ");
        out.push_str(&redact(message));
        out.push('\n');
    }
    out
}

fn redact_identifier(ident: &str) -> String {
    // Identifiers like "buggy-server[123]" never appear here (the PID is a separate field),
    // but scripts may name themselves with one.
    redact(ident)
}

/// Redact the volatile parts of one message.
pub fn redact(message: &str) -> String {
    if let Some(pos) = message.find("Consumed ") {
        // "x.service: Consumed 12ms CPU time, 1.2M memory peak." -> figures vary run to run.
        return format!("{}Consumed [resources].", &message[..pos]);
    }
    let mut out = String::with_capacity(message.len());
    let words: Vec<&str> = message.split(' ').collect();
    for (i, word) in words.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let prev = if i > 0 { words[i - 1].to_ascii_lowercase() } else { String::new() };
        out.push_str(&redact_word(word, &prev));
    }
    out
}

fn redact_word(word: &str, prev: &str) -> String {
    let core = word.trim_end_matches(['.', ',', ';', ':', ')', '!']);
    let tail = &word[core.len()..];
    // "process 1234", "pid 1234", "PID 1234", "daemon 1234": the number is a PID.
    let after_pid_word = matches!(prev.trim_end_matches(['(', ',']), "process" | "pid" | "pid=" | "daemon" | "parent" | "child" | "mainpid");
    if after_pid_word && !core.is_empty() && core.chars().all(|c| c.is_ascii_digit()) {
        return format!("[PID]{tail}");
    }
    // "pid=1234", "MAINPID=1234", "pid 1234)" variants glued with '='.
    if let Some((k, v)) = core.split_once('=') {
        let lk = k.to_ascii_lowercase();
        if (lk.ends_with("pid")) && !v.is_empty() && v.chars().all(|c| c.is_ascii_digit()) {
            return format!("{k}=[PID]{tail}");
        }
    }
    // "name[1234]" as written by scripts.
    if let Some(open) = core.find('[') {
        let inner = &core[open + 1..core.len().saturating_sub(1)];
        if core.ends_with(']') && !inner.is_empty() && inner.chars().all(|c| c.is_ascii_digit()) {
            return format!("{}[PID]{tail}", &core[..open]);
        }
    }
    // 32-hex ids (invocation, boot, machine ids).
    if core.len() == 32 && core.chars().all(|c| c.is_ascii_hexdigit()) {
        return format!("[ID]{tail}");
    }
    word.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_resources_and_ids_are_redacted() {
        assert_eq!(redact("Killing process 1234 (buggy-server) with signal SIGABRT."), "Killing process [PID] (buggy-server) with signal SIGABRT.");
        assert_eq!(redact("x.service: Consumed 12ms CPU time, 1.2M memory peak."), "x.service: Consumed [resources].");
        assert_eq!(redact("starting: pid 77, shape foreground"), "starting: pid [PID], shape foreground");
        assert_eq!(redact("READY=1 MAINPID=4242 sent"), "READY=1 MAINPID=[PID] sent");
        assert_eq!(redact("invocation 0123456789abcdef0123456789abcdef"), "invocation [ID]");
        assert_eq!(redact("parent 12 exiting: daemon 13 is listening"), "parent [PID] exiting: daemon [PID] is listening");
    }

    #[test]
    fn stable_text_is_untouched() {
        let s = "x.service: Scheduled restart job, restart counter is at 1.";
        assert_eq!(redact(s), s);
        assert_eq!(redact("Watchdog timeout (limit 1s)!"), "Watchdog timeout (limit 1s)!");
        assert_eq!(redact("Main process exited, code=exited, status=3/NOTIMPLEMENTED"), "Main process exited, code=exited, status=3/NOTIMPLEMENTED");
    }

    #[test]
    fn clean_up_kills_after_the_main_exit_are_left_out_but_stop_timeout_kills_stay() {
        let line = |m: &str| -> JournalEntry {
            serde_json::from_str(&format!(r#"{{"SYSLOG_IDENTIFIER":"systemd","MESSAGE":"{m}","_PID":"1","UNIT":"a.service"}}"#)).unwrap()
        };
        let entries = vec![
            line("a.service: State 'stop-sigterm' timed out. Killing."),
            line("a.service: Killing process 7 (buggy-server) with signal SIGKILL."),
            line("a.service: Killing process 8 (curl) with signal SIGKILL."),
            line("a.service: Main process exited, code=killed, status=6/ABRT"),
            line("a.service: Killing process 9 (handler) with signal SIGKILL."),
            line("a.service: Failed with result 'watchdog'."),
        ];
        assert_eq!(
            normalise(&entries),
            "systemd: a.service: State 'stop-sigterm' timed out. Killing.\n\
             systemd: a.service: Killing process [PID] (buggy-server) with signal SIGKILL.\n\
             systemd: a.service: Main process exited, code=killed, status=6/ABRT\n\
             systemd: a.service: Failed with result 'watchdog'.\n"
        );
    }

    #[test]
    fn entries_render_as_identifier_and_message() {
        let e: JournalEntry = serde_json::from_str(r#"{"SYSLOG_IDENTIFIER":"systemd","MESSAGE":"Started x.","_PID":"1","__CURSOR":"s=1"}"#).unwrap();
        assert_eq!(normalise(&[e]), "systemd: Started x.\n");
    }
}
