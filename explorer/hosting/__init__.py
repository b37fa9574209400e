"""Hosting: the app started as a real server, and a local cluster of replicas behind nginx."""
