"""The ``tstore`` command and the local development infrastructure around the three packages."""
