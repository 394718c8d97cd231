# Packer (azure-arm): bake a MariaDB host image with dbhost. The build VM gets two empty data
# disks; dbhost turns them into the array, filesystem and datadir, then generalizes the VM and
# waagent deprovisions it; Packer captures the OS disk and the data disks into one managed image.
# VMs deployed from it come up with the same array, mount and data under their own identity.
# See README.md in this directory.

packer {
  required_plugins {
    azure = {
      source  = "github.com/hashicorp/azure"
      version = ">= 2.0.0"
    }
  }
}

variable "subscription_id" {
  type        = string
  description = "Azure subscription to build in."
}

variable "resource_group" {
  type        = string
  description = "Existing resource group for the build VM and the managed image."
}

variable "vm_size" {
  type    = string
  default = "Standard_E4ds_v5"
}

variable "data_disk_gb" {
  type        = list(number)
  description = "Sizes of the data disks that become the RAID-0 array (LUN 0, 1, ...)."
  default     = [128, 128]
}

variable "dbhost_binary" {
  type        = string
  description = "The static dbhost binary (scripts/build-static.sh)."
  default     = "../../target/x86_64-unknown-linux-musl/release/dbhost"
}

variable "profile" {
  type        = string
  description = "The dbhost profile applied at build time and again on each deployed VM's first boot."
  default     = "../../profiles/azure-mariadb.toml"
}

source "azure-arm" "mariadb" {
  use_azure_cli_auth = true
  subscription_id    = var.subscription_id

  build_resource_group_name         = var.resource_group
  managed_image_resource_group_name = var.resource_group
  managed_image_name                = "dbhost-mariadb-${formatdate("YYYYMMDDhhmmss", timestamp())}"

  os_type         = "Linux"
  image_publisher = "Debian"
  image_offer     = "debian-12"
  image_sku       = "12-gen2"
  vm_size         = var.vm_size

  # Data disks captured with the image. The profile accepts only host caching None: check that
  # your plugin version attaches them that way (see README.md), or adjust the profile.
  disk_additional_size = var.data_disk_gb

  azure_tags = {
    built_by = "packer+dbhost"
  }
}

build {
  sources = ["source.azure-arm.mariadb"]

  provisioner "file" {
    source      = var.dbhost_binary
    destination = "/tmp/dbhost"
  }

  provisioner "file" {
    source      = var.profile
    destination = "/tmp/dbhost-profile.toml"
  }

  # Install the database and dbhost, then converge: array, filesystem, mount, datadir, tuning.
  # `--output json` prints one JSON document Packer shows in its log; a non-zero exit fails the
  # build (1 error, 2 profile error, 3 refused for safety, 4 interrupted).
  provisioner "shell" {
    execute_command = "chmod +x {{ .Path }}; {{ .Vars }} sudo -E sh -e '{{ .Path }}'"
    inline = [
      "export DEBIAN_FRONTEND=noninteractive",
      "apt-get update",
      "apt-get install -y mariadb-server",
      "install -m 0755 /tmp/dbhost /usr/local/sbin/dbhost",
      "install -d -m 0755 /etc/dbhost",
      "install -m 0644 /tmp/dbhost-profile.toml /etc/dbhost/profile.toml",
      "/usr/local/sbin/dbhost apply --profile /etc/dbhost/profile.toml --yes --wait-disks 300s --output json",
    ]
  }

  # Generalize and deprovision in ONE script: generalize removes the provisioning sudoers
  # entries, so a later provisioner could not sudo any more. waagent runs last (it reads the
  # provisioned user from ovf-env.xml, which generalize keeps for it, then deletes its state and
  # that user). The final check fails the build if anything generalize covers is left.
  provisioner "shell" {
    execute_command = "chmod +x {{ .Path }}; {{ .Vars }} sudo -E sh -e '{{ .Path }}'"
    skip_clean      = true
    inline = [
      "/usr/local/sbin/dbhost generalize --yes --profile /etc/dbhost/profile.toml --output json",
      "/usr/sbin/waagent -force -deprovision+user",
      "/usr/local/sbin/dbhost generalize --check",
      "export HISTSIZE=0",
      "sync",
    ]
  }
}
