"""Reference values recorded by running the peer libraries (PyTorch, timm, transformers, optax).

Each module here runs one peer over a list of settings and writes
`tests/data/peers/<module>.json`; the parity tests read those files, so CI needs none of the
peers installed. To record them again (anyone can)::

    python -m venv /tmp/peers && /tmp/peers/bin/pip install torch timm transformers keras \
        optax jax numpy
    /tmp/peers/bin/python scripts/peer_values.py            # every module
    /tmp/peers/bin/python scripts/peer_values.py wsd_hf     # one module
"""
