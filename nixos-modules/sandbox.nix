# The systemd sandbox every endoreg service starts from (registry, media, inference), for a DynamicUser
# `user`: no capabilities, no devices, a read-only system, private /tmp, no kernel or namespace access, no
# writable code (MemoryDenyWriteExecute), @system-service calls without @privileged and @resources. A unit
# merges its own settings over it (`//`) and says there why it loosens anything: the media and inference
# workers need writable code (FFmpeg's run-time generated scaler; nixpkgs' ONNX Runtime's executable stack),
# measured by .ci-nix/mdwe-check.sh. Reaches `systemd-analyze security` exposure <= 2.0 (the VM tests on the
# booted units; .ci-nix/unit-security.sh on every host's units without booting).
user: {
  DynamicUser = true;
  User = user;
  Group = user;
  UMask = "0077";
  CapabilityBoundingSet = "";
  AmbientCapabilities = "";
  NoNewPrivileges = true;
  PrivateDevices = true;
  DevicePolicy = "closed";
  PrivateTmp = true;
  PrivateUsers = true;
  PrivateMounts = true;
  ProtectSystem = "strict";
  ProtectHome = true;
  ProtectClock = true;
  ProtectHostname = true;
  ProtectKernelLogs = true;
  ProtectKernelModules = true;
  ProtectKernelTunables = true;
  ProtectControlGroups = true;
  ProtectProc = "invisible";
  ProcSubset = "pid";
  RestrictNamespaces = true;
  RestrictRealtime = true;
  RestrictSUIDSGID = true;
  LockPersonality = true;
  MemoryDenyWriteExecute = true;
  RemoveIPC = true;
  KeyringMode = "private";
  SystemCallArchitectures = "native";
  SystemCallFilter = [ "@system-service" "~@privileged @resources" ];
  SystemCallErrorNumber = "EPERM";
}
