"""Generation backends: the SDNext servers, their CRUD, health probes and leases (SPEC 5.5.1, 6.2.6, 6.3.7)."""
