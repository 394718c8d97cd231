//! Copy-throughput benchmark of the datadir relocation copier (for the VM benchmark).
//! Usage: db_copy_bench SRC_DIR EMPTY_SCRATCH_DIR [--json]
//! Prints figures only; compare with raw device bandwidth measured by `dd` in the same guest.

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: {} SRC_DIR EMPTY_SCRATCH_DIR [--json]", args[0]);
        std::process::exit(2);
    }
    let opts = dbhost::db::copy::CopyOptions::default();
    let b = dbhost::db::bench::measure_copy(args[1].as_ref(), args[2].as_ref(), &opts)?;
    if args.get(3).map(String::as_str) == Some("--json") {
        println!("{}", serde_json::to_string(&b)?);
    } else {
        print!("{}", b.render());
    }
    Ok(())
}
