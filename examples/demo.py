"""The demo (scripts/demo runs it): a simulated robot, the alien_ros bridge node and the mothership.

    scripts/demo [--duration S] [--dialect v0.0.1|v0.1] [--no-ui]

Starts a real nats-server and the mothership emulator on 127.0.0.1, the simulated robot
(alien_demo/sim_robot.py: NavSatFix on a loop, BatteryState draining, diagnostics turning WARN,
a return_to_base action) and the bridge as their own processes; shows live what the mothership
receives; commands return_to_base (ack -> progress -> result); stops nats-server for a while
(the bridge's outbox fills) and restarts it (it drains, nothing lost); exits 0 when every check
of the summary holds. The code lives in alien_demo/.
"""

import sys

from alien_demo.story import main

if __name__ == "__main__":
    sys.exit(main())
