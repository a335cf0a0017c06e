"""The dashboard's screens: one per mode (F1-F5) plus the user detail screen."""
