"""Paired-data production (paper section 3.2), Ray-free: inversion (Eq. 4-5) from the start
codes w_mean / w~_mean, the realistic face (Eq. 6), semantic augmentation (Eq. 7), the row
maker that turns engine renders into pair rows, the dataset's config and plan, and the reader
of a finished dataset. `actors/` runs these on Ray (actors.inversion_worker,
actors.produce_stage).

    config.py        ProduceConfig (nests InversionConfig and AugmentConfig)
    plan.py          plan_produce: engine, generators, LPIPS, start codes, dataset identity
    inversion.py     invert, Eq. 4-5          inversion_terms.py  segmentation, colour terms
    inversion_config.py  InversionConfig (no torch)  problems.py  config errors by field
    mean_latent.py   w~_mean, choose_init     mean_cache.py       w~_mean stored or cached
    realistic.py     generate_real, Eq. 6     augment.py          augment, Eq. 7
    wplus.py         W+ codes, frozen G       rows.py             renders -> pair rows, shards
    pairs.py         read_pairs, Figure 5, the correspondence report of a dataset

Importing this package imports none of them.
"""
