//! Filesystems: mkfs argument rendering (stripe-aligned), fstab lines, mounts. Owner: issue 5.
