"""What pragmash remembers: the SQLite ledger, run journals and allocation."""
