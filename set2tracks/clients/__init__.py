"""Adapters for the outside world (yt-dlp, Shazam, Spotify, Apple, mail), built from config."""
