"""Helpers the test layers share (imported as `support.<module>`)."""
