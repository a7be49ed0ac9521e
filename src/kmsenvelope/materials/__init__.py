"""Materials, the keyring and CMM protocols, and the materials managers."""
