"""One customer across channels: identities, profiles, merges and link codes."""
