"""Turnkey applications built on i2dl_keras; run them with `i2dl APP VERB`."""
