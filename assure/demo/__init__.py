"""``nfv-assure demo``: a closed loop on the embedded defaults, in accelerated time."""
