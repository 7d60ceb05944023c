"""Where VCs come from: a repository's vcdb.txt, on disk or on a web server."""
