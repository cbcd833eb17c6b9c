"""MoE-Prism: split each expert into N sub-experts by neuron partition, re-gate, and expose
the finer operating points."""
