//! The directive names systemd knows per section (247..262), to warn about the ones it would
//! ignore ("Unknown key name 'RestartSecs' in section 'Service', ignoring.") with a hint naming
//! the intended one, and the first of the lab's suites whose systemd knows each newer one
//! ([`FIRST_KNOWN`]), to warn about a directive a suite's older systemd would ignore. The
//! lists only feed warnings: a directive missing here still gets rendered and reaches systemd.

/// `[Unit]` (systemd.unit(5)), including the start-rate-limit settings that belong here.
pub const UNIT: &[&str] = &[
    "Description", "Documentation", "Wants", "Requires", "Requisite", "BindsTo", "PartOf",
    "Upholds", "Conflicts", "Before", "After", "OnFailure", "OnSuccess", "PropagatesReloadTo",
    "ReloadPropagatedFrom", "PropagatesStopTo", "StopPropagatedFrom", "JoinsNamespaceOf",
    "RequiresMountsFor", "WantsMountsFor", "OnFailureJobMode", "IgnoreOnIsolate",
    "StopWhenUnneeded", "RefuseManualStart", "RefuseManualStop", "AllowIsolate",
    "DefaultDependencies", "SurviveFinalKillSignal", "CollectMode", "FailureAction",
    "SuccessAction", "FailureActionExitStatus", "SuccessActionExitStatus", "JobTimeoutSec",
    "JobRunningTimeoutSec", "JobTimeoutAction", "JobTimeoutRebootArgument",
    "StartLimitIntervalSec", "StartLimitBurst", "StartLimitAction", "RebootArgument",
    "SourcePath", "ConditionArchitecture", "ConditionFirmware", "ConditionVirtualization",
    "ConditionHost", "ConditionKernelCommandLine", "ConditionKernelVersion",
    "ConditionCredential", "ConditionEnvironment", "ConditionSecurity", "ConditionCapability",
    "ConditionACPower", "ConditionNeedsUpdate", "ConditionFirstBoot", "ConditionPathExists",
    "ConditionPathExistsGlob", "ConditionPathIsDirectory", "ConditionPathIsSymbolicLink",
    "ConditionPathIsMountPoint", "ConditionPathIsReadWrite", "ConditionPathIsEncrypted",
    "ConditionDirectoryNotEmpty", "ConditionFileNotEmpty", "ConditionFileIsExecutable",
    "ConditionUser", "ConditionGroup", "ConditionControlGroupController", "ConditionMemory",
    "ConditionCPUs", "ConditionCPUFeature", "ConditionOSRelease", "ConditionMemoryPressure",
    "ConditionCPUPressure", "ConditionIOPressure", "AssertArchitecture",
    "AssertVirtualization", "AssertHost", "AssertKernelCommandLine", "AssertKernelVersion",
    "AssertCredential", "AssertEnvironment", "AssertSecurity", "AssertCapability",
    "AssertACPower", "AssertNeedsUpdate", "AssertFirstBoot", "AssertPathExists",
    "AssertPathExistsGlob", "AssertPathIsDirectory", "AssertPathIsSymbolicLink",
    "AssertPathIsMountPoint", "AssertPathIsReadWrite", "AssertPathIsEncrypted",
    "AssertDirectoryNotEmpty", "AssertFileNotEmpty", "AssertFileIsExecutable", "AssertUser",
    "AssertGroup", "AssertControlGroupController", "AssertMemory", "AssertCPUs",
    "AssertCPUFeature", "AssertOSRelease", "AssertMemoryPressure", "AssertCPUPressure",
    "AssertIOPressure",
];

/// `[Service]`: systemd.service(5), plus systemd.exec(5), systemd.kill(5) and
/// systemd.resource-control(5), which are all valid there. The legacy start-limit names are
/// accepted in `[Service]` (and only those).
pub const SERVICE: &[&str] = &[
    // systemd.service
    "Type", "ExitType", "RemainAfterExit", "GuessMainPID", "PIDFile", "BusName", "ExecStart",
    "ExecStartPre", "ExecStartPost", "ExecCondition", "ExecReload", "ExecStop", "ExecStopPost",
    "RestartSec", "RestartSteps", "RestartMaxDelaySec", "TimeoutStartSec", "TimeoutStopSec",
    "TimeoutAbortSec", "TimeoutSec", "TimeoutStartFailureMode", "TimeoutStopFailureMode",
    "RuntimeMaxSec", "RuntimeRandomizedExtraSec", "WatchdogSec", "Restart", "RestartMode",
    "SuccessExitStatus", "RestartPreventExitStatus", "RestartForceExitStatus", "RootDirectoryStartOnly",
    "NonBlocking", "NotifyAccess", "Sockets", "FileDescriptorStoreMax",
    "FileDescriptorStorePreserve", "USBFunctionDescriptors", "USBFunctionStrings", "OOMPolicy",
    "OpenFile", "ReloadSignal", "StartLimitInterval", "StartLimitBurst", "StartLimitAction",
    "FailureAction", "RebootArgument", "PermissionsStartOnly", "SysVStartPriority",
    // systemd.kill
    "KillMode", "KillSignal", "RestartKillSignal", "SendSIGHUP", "SendSIGKILL", "FinalKillSignal",
    "WatchdogSignal",
    // systemd.exec
    "ExecSearchPath", "WorkingDirectory", "RootDirectory", "RootImage", "RootImageOptions",
    "RootEphemeral", "RootHash", "RootHashSignature", "RootVerity", "RootImagePolicy",
    "MountImagePolicy", "ExtensionImagePolicy", "MountAPIVFS", "ProtectProc", "ProcSubset",
    "BindPaths", "BindReadOnlyPaths", "MountImages", "ExtensionImages", "ExtensionDirectories",
    "User", "Group", "DynamicUser", "SupplementaryGroups", "SetLoginEnvironment", "PAMName",
    "CapabilityBoundingSet", "AmbientCapabilities", "NoNewPrivileges", "SecureBits",
    "SELinuxContext", "AppArmorProfile", "SmackProcessLabel", "LimitCPU", "LimitFSIZE",
    "LimitDATA", "LimitSTACK", "LimitCORE", "LimitRSS", "LimitNOFILE", "LimitAS", "LimitNPROC",
    "LimitMEMLOCK", "LimitLOCKS", "LimitSIGPENDING", "LimitMSGQUEUE", "LimitNICE",
    "LimitRTPRIO", "LimitRTTIME", "UMask", "CoredumpFilter", "KeyringMode", "OOMScoreAdjust",
    "TimerSlackNSec", "Personality", "IgnoreSIGPIPE", "Nice", "CPUSchedulingPolicy",
    "CPUSchedulingPriority", "CPUSchedulingResetOnFork", "CPUAffinity", "NUMAPolicy",
    "NUMAMask", "IOSchedulingClass", "IOSchedulingPriority", "ProtectSystem", "ProtectHome",
    "RuntimeDirectory", "StateDirectory", "CacheDirectory", "LogsDirectory",
    "ConfigurationDirectory", "RuntimeDirectoryMode", "StateDirectoryMode",
    "CacheDirectoryMode", "LogsDirectoryMode", "ConfigurationDirectoryMode",
    "RuntimeDirectoryPreserve", "TimeoutCleanSec", "ReadWritePaths", "ReadOnlyPaths",
    "InaccessiblePaths", "ExecPaths", "NoExecPaths", "TemporaryFileSystem", "PrivateTmp",
    "PrivateDevices", "PrivateNetwork", "NetworkNamespacePath", "PrivateIPC",
    "IPCNamespacePath", "MemoryKSM", "PrivateUsers", "ProtectHostname", "ProtectClock",
    "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs",
    "ProtectControlGroups", "RestrictAddressFamilies", "RestrictFileSystems",
    "RestrictNamespaces", "LockPersonality", "MemoryDenyWriteExecute", "RestrictRealtime",
    "RestrictSUIDSGID", "RemoveIPC", "PrivateMounts", "MountFlags", "SystemCallFilter",
    "SystemCallErrorNumber", "SystemCallArchitectures", "SystemCallLog", "Environment",
    "EnvironmentFile", "PassEnvironment", "UnsetEnvironment", "StandardInput",
    "StandardOutput", "StandardError", "StandardInputText", "StandardInputData",
    "LogLevelMax", "LogExtraFields", "LogRateLimitIntervalSec", "LogRateLimitBurst",
    "LogFilterPatterns", "LogNamespace", "SyslogIdentifier", "SyslogFacility",
    "SyslogLevel", "SyslogLevelPrefix", "TTYPath", "TTYReset", "TTYVHangup", "TTYRows",
    "TTYColumns", "TTYVTDisallocate", "LoadCredential", "LoadCredentialEncrypted",
    "ImportCredential", "SetCredential", "SetCredentialEncrypted", "UtmpIdentifier",
    "UtmpMode", "PrivatePIDs", "MemoryTHP",
    // systemd.resource-control
    "CPUAccounting", "CPUWeight", "StartupCPUWeight", "CPUQuota", "CPUQuotaPeriodSec",
    "AllowedCPUs", "StartupAllowedCPUs", "AllowedMemoryNodes", "StartupAllowedMemoryNodes",
    "MemoryAccounting", "MemoryMin", "MemoryLow", "StartupMemoryLow", "DefaultStartupMemoryLow",
    "MemoryHigh", "StartupMemoryHigh", "MemoryMax", "StartupMemoryMax", "MemorySwapMax",
    "StartupMemorySwapMax", "MemoryZSwapMax", "StartupMemoryZSwapMax", "MemoryZSwapWriteback",
    "TasksAccounting", "TasksMax", "IOAccounting", "IOWeight", "StartupIOWeight",
    "IODeviceWeight", "IOReadBandwidthMax", "IOWriteBandwidthMax", "IOReadIOPSMax",
    "IOWriteIOPSMax", "IODeviceLatencyTargetSec", "IPAccounting", "IPAddressAllow",
    "IPAddressDeny", "SocketBindAllow", "SocketBindDeny", "RestrictNetworkInterfaces",
    "NFTSet", "IPIngressFilterPath", "IPEgressFilterPath", "BPFProgram", "DeviceAllow",
    "DevicePolicy", "Slice", "Delegate", "DelegateSubgroup", "DisableControllers",
    "ManagedOOMSwap", "ManagedOOMMemoryPressure", "ManagedOOMMemoryPressureLimit",
    "ManagedOOMMemoryPressureDurationSec", "ManagedOOMPreference", "MemoryPressureWatch",
    "MemoryPressureThresholdSec", "CoredumpReceive", "CPUShares", "StartupCPUShares",
    "MemoryLimit", "BlockIOAccounting", "BlockIOWeight", "StartupBlockIOWeight",
    "BlockIODeviceWeight", "BlockIOReadBandwidth", "BlockIOWriteBandwidth",
];

/// `[Install]`.
pub const INSTALL: &[&str] = &["Alias", "WantedBy", "RequiredBy", "UpheldBy", "Also", "DefaultInstance"];

/// system.conf `[Manager]` (systemd-system.conf(5)).
pub const MANAGER: &[&str] = &[
    "LogColor", "LogLevel", "LogLocation", "LogTarget", "LogTime", "DumpCore", "ShowStatus",
    "CrashChangeVT", "CrashShell", "CrashAction", "CrashReboot", "CtrlAltDelBurstAction",
    "CPUAffinity", "NUMAPolicy", "NUMAMask", "RuntimeWatchdogSec", "RuntimeWatchdogPreSec",
    "RuntimeWatchdogPreGovernor", "RebootWatchdogSec", "KExecWatchdogSec", "WatchdogDevice",
    "CapabilityBoundingSet", "NoNewPrivileges", "ProtectSystem", "SystemCallArchitectures",
    "TimerSlackNSec", "StatusUnitFormat", "DefaultTimerAccuracySec", "DefaultStandardOutput",
    "DefaultStandardError", "DefaultTimeoutStartSec", "DefaultTimeoutStopSec",
    "DefaultTimeoutAbortSec", "DefaultDeviceTimeoutSec", "DefaultRestartSec",
    "DefaultStartLimitIntervalSec", "DefaultStartLimitBurst", "DefaultEnvironment",
    "ManagerEnvironment", "DefaultCPUAccounting", "DefaultIOAccounting", "DefaultIPAccounting",
    "DefaultMemoryAccounting", "DefaultTasksAccounting", "DefaultTasksMax",
    "DefaultLimitCPU", "DefaultLimitFSIZE", "DefaultLimitDATA", "DefaultLimitSTACK",
    "DefaultLimitCORE", "DefaultLimitRSS", "DefaultLimitNOFILE", "DefaultLimitAS",
    "DefaultLimitNPROC", "DefaultLimitMEMLOCK", "DefaultLimitLOCKS", "DefaultLimitSIGPENDING",
    "DefaultLimitMSGQUEUE", "DefaultLimitNICE", "DefaultLimitRTPRIO", "DefaultLimitRTTIME",
    "DefaultOOMPolicy", "DefaultOOMScoreAdjust", "DefaultSmackProcessLabel",
    "DefaultMemoryPressureWatch", "DefaultMemoryPressureThresholdSec", "ReloadLimitIntervalSec",
    "ReloadLimitBurst", "DefaultBlockIOAccounting",
];

/// Directives that some of the lab's suites do not know: (section, name, the systemd version
/// of the oldest suite that knows it). Everything else in the lists above is known from 247
/// (bullseye) on. Measured, not read from NEWS: a unit with every directive above, each set
/// empty, checked with `systemd-analyze verify` on every suite (247, 252, 254, 257, 262),
/// which logs "Unknown key" for each name that systemd does not know. So 254 means "unknown
/// to 252, known to 254": the directive may have appeared in 253. The measurement also showed
/// `AssertFirmware=` and `ProtectControlGroupsEx=` unknown to every suite up to 262 (the
/// lists no longer carry them).
pub const FIRST_KNOWN: &[(&str, &str, u32)] = &[
    ("Unit", "Upholds", 252), ("Unit", "OnSuccess", 252), ("Unit", "PropagatesStopTo", 252),
    ("Unit", "StopPropagatedFrom", 252), ("Unit", "ConditionFirmware", 252),
    ("Unit", "ConditionCredential", 252), ("Unit", "ConditionCPUFeature", 252),
    ("Unit", "ConditionOSRelease", 252), ("Unit", "ConditionMemoryPressure", 252),
    ("Unit", "ConditionCPUPressure", 252), ("Unit", "ConditionIOPressure", 252),
    ("Unit", "AssertCredential", 252), ("Unit", "AssertCPUFeature", 252),
    ("Unit", "AssertOSRelease", 252), ("Unit", "AssertMemoryPressure", 252),
    ("Unit", "AssertCPUPressure", 252), ("Unit", "AssertIOPressure", 252),
    ("Unit", "SurviveFinalKillSignal", 257), ("Unit", "WantsMountsFor", 257),
    ("Install", "UpheldBy", 252),
    ("Service", "BPFProgram", 252), ("Service", "ExecPaths", 252), ("Service", "NoExecPaths", 252),
    ("Service", "ExecSearchPath", 252), ("Service", "ExitType", 252),
    ("Service", "ExtensionDirectories", 252), ("Service", "ExtensionImages", 252),
    ("Service", "IPCNamespacePath", 252), ("Service", "PrivateIPC", 252),
    ("Service", "LoadCredentialEncrypted", 252), ("Service", "SetCredentialEncrypted", 252),
    ("Service", "ManagedOOMMemoryPressureLimit", 252), ("Service", "ManagedOOMPreference", 252),
    ("Service", "RestrictFileSystems", 252), ("Service", "RestrictNetworkInterfaces", 252),
    ("Service", "RuntimeRandomizedExtraSec", 252), ("Service", "SocketBindAllow", 252),
    ("Service", "SocketBindDeny", 252), ("Service", "StartupAllowedCPUs", 252),
    ("Service", "StartupAllowedMemoryNodes", 252), ("Service", "TTYColumns", 252),
    ("Service", "TTYRows", 252),
    ("Service", "RestartSteps", 254), ("Service", "RestartMaxDelaySec", 254),
    ("Service", "RestartMode", 254), ("Service", "OpenFile", 254), ("Service", "ReloadSignal", 254),
    ("Service", "FileDescriptorStorePreserve", 254), ("Service", "DefaultStartupMemoryLow", 254),
    ("Service", "DelegateSubgroup", 254), ("Service", "ExtensionImagePolicy", 254),
    ("Service", "MountImagePolicy", 254), ("Service", "RootImagePolicy", 254),
    ("Service", "RootEphemeral", 254), ("Service", "ImportCredential", 254),
    ("Service", "LogFilterPatterns", 254), ("Service", "MemoryKSM", 254),
    ("Service", "MemoryPressureWatch", 254), ("Service", "MemoryPressureThresholdSec", 254),
    ("Service", "MemoryZSwapMax", 254), ("Service", "StartupMemoryLow", 254),
    ("Service", "StartupMemoryHigh", 254), ("Service", "StartupMemoryMax", 254),
    ("Service", "StartupMemorySwapMax", 254), ("Service", "StartupMemoryZSwapMax", 254),
    ("Service", "CoredumpReceive", 257), ("Service", "ManagedOOMMemoryPressureDurationSec", 257),
    ("Service", "MemoryZSwapWriteback", 257), ("Service", "NFTSet", 257),
    ("Service", "PrivatePIDs", 257), ("Service", "SetLoginEnvironment", 257),
    ("Service", "MemoryTHP", 262),
];

/// The systemd version of the oldest suite that knows `key` in `section`, when some suite's
/// systemd does not (None: every suite knows it, or the lab does not know it at all).
pub fn first_known(section: &str, key: &str) -> Option<u32> {
    FIRST_KNOWN.iter().find(|(s, k, _)| *s == section && *k == key).map(|(_, _, v)| *v)
}

/// The section a directive belongs to, when it is known in some section.
pub fn home_section(key: &str) -> Option<&'static str> {
    if UNIT.contains(&key) {
        Some("Unit")
    } else if SERVICE.contains(&key) {
        Some("Service")
    } else if INSTALL.contains(&key) {
        Some("Install")
    } else {
        None
    }
}

/// The closest known name within a small edit distance (`RestartSecs` -> `RestartSec`,
/// `restartsec` -> `RestartSec`: systemd's names are case-sensitive, so a case slip is a typo).
pub fn suggest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    let lower = key.to_ascii_lowercase();
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(&lower, &k.to_ascii_lowercase()), *k))
        .filter(|&(d, k)| d <= (k.len() / 4).clamp(1, 3))
        .min_by_key(|&(d, _)| d)
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_the_intended_directive() {
        assert_eq!(suggest("RestartSecs", SERVICE), Some("RestartSec"));
        assert_eq!(suggest("restartsec", SERVICE), Some("RestartSec"));
        assert_eq!(suggest("WatchDogSec", SERVICE), Some("WatchdogSec"));
        assert_eq!(suggest("Afterr", UNIT), Some("After"));
        assert_eq!(suggest("DefaultTimeoutStartSecs", MANAGER), Some("DefaultTimeoutStartSec"));
        assert_eq!(suggest("Completely", SERVICE), None);
    }

    #[test]
    fn lists_have_no_duplicates() {
        for list in [UNIT, SERVICE, INSTALL, MANAGER] {
            let mut sorted = list.to_vec();
            sorted.sort_unstable();
            let before = sorted.len();
            sorted.dedup();
            assert_eq!(before, sorted.len());
        }
    }

    #[test]
    fn every_version_fact_names_a_listed_directive_and_a_lab_version() {
        for (section, key, version) in FIRST_KNOWN {
            let list = match *section {
                "Unit" => UNIT,
                "Service" => SERVICE,
                "Install" => INSTALL,
                other => panic!("unknown section {other}"),
            };
            assert!(list.contains(key), "{section}.{key} is not in the list");
            assert!([252, 254, 257, 262].contains(version), "{key}: {version} is not a suite's version above the oldest");
        }
        assert_eq!(first_known("Service", "RestartSteps"), Some(254));
        assert_eq!(first_known("Unit", "Upholds"), Some(252));
        assert_eq!(first_known("Service", "Restart"), None);
    }

    #[test]
    fn start_limits_live_in_unit() {
        assert_eq!(home_section("StartLimitIntervalSec"), Some("Unit"));
        assert!(!SERVICE.contains(&"StartLimitIntervalSec"));
        assert!(SERVICE.contains(&"StartLimitInterval"));
    }
}
