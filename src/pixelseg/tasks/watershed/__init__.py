"""Semantic → instance: a semantic net on interior/boundary targets plus a watershed."""
