"""Browser tests of the web monitor."""
