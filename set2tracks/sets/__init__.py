"""Sets, channels, submissions, tracklists and exports."""
