//! The directive names systemd knows per section (252..257), to warn about the ones it would
//! ignore ("Unknown key name 'RestartSecs' in section 'Service', ignoring.") with a hint naming
//! the intended one. The lists only feed warnings: a directive missing here still gets
//! rendered and reaches systemd.

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
    "ConditionCPUPressure", "ConditionIOPressure", "AssertArchitecture", "AssertFirmware",
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
    "UtmpMode", "PrivatePIDs", "ProtectControlGroupsEx", "MemoryTHP",
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
    fn start_limits_live_in_unit() {
        assert_eq!(home_section("StartLimitIntervalSec"), Some("Unit"));
        assert!(!SERVICE.contains(&"StartLimitIntervalSec"));
        assert!(SERVICE.contains(&"StartLimitInterval"));
    }
}
