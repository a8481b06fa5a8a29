"""The one-command demo (`scripts/demo`): a simulated robot, the bridge and the mothership emulator."""
