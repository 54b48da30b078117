"""The SDNext client (SPEC 6.3): transport, txt2img payload, outcome mapping, response processing and the
progress poller. Only HTTP and pure parsing live here, except ``progress`` (the poller writes the job row)."""
