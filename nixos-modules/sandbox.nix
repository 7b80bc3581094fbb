# The systemd sandbox every endoreg service starts from (registry, media, inference), for a DynamicUser
# `user`: no capabilities, no devices, a read-only system, private /tmp, no kernel or namespace access, no
# code generated in memory (FFmpeg, x264 and ONNX Runtime ship precompiled kernels), @system-service calls
# without @privileged and @resources. A unit merges its own settings over it (`//`) and says there why it
# loosens anything. Reaches `systemd-analyze security` exposure <= 2.0 (checked by the VM tests).
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
