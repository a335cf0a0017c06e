"""Typed modal dialogs: confirmation and forms that show feature errors inline."""
