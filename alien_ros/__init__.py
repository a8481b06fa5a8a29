"""alien_ros: the thin ROS 2 layer over the alien client library (imports alien, never the reverse)."""
