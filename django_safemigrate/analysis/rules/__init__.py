"""One rule a module: ``smNNN_<name>.py`` (or a package of that name, when its reasoning needs
several files). The registry imports every module here."""
