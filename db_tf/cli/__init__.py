"""Command-line front ends of db-tf (shared argument types and console set-up in common.py)."""
