"""The session viewer: a few static pages that ``tstore serve`` serves at ``/``, beside the API
they call from the browser (``viewer.mount.install``)."""
