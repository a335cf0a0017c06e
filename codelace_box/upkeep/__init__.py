"""What serve does for the operator in the background: scheduled backups and alerts."""
