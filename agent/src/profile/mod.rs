//! Profiles: TOML `version = 1`, strict, validated across fields. Owner: issue 2.
