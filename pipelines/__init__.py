"""Daily Papers digests to a versioned dataset that DuckDB can query."""

import os

# Polars' allocator (jemalloc) hands freed pages back to the system lazily: by Polars'
# own setting, after half a second it marks them free (MADV_FREE), and they stay in the
# process's RSS a second more. Through a build's churn that held 100-150 MiB beyond its
# data: a full build of 10,000 digests peaked at 1,918-1,971 MiB, at 1,823-1,855 MiB
# with them handed back within 100 ms. Polars reads this when first imported (every
# entry point imports this package first); a setting of the user's own is kept.
os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:100,muzzy_decay_ms:0")
