"""Exports of proposals and the fiscal-year report."""
