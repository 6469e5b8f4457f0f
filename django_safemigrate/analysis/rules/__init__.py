"""One rule a module: ``smNNN_<name>.py``. The registry imports every module here."""
