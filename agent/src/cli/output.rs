//! Output formatting shared by every command.

use clap::ValueEnum;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

/// Print a serializable value as pretty JSON on stdout.
pub fn print_json<T: Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// Print one JSON event line (for pipelines) on stdout.
pub fn print_event<T: Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(v)?);
    Ok(())
}

/// Report an error: the whole context chain, on stderr (text) or as JSON on stdout.
pub fn print_error(fmt: OutputFormat, err: &anyhow::Error, code: i32) {
    let chain: Vec<String> = err.chain().map(|c| c.to_string()).collect();
    match fmt {
        OutputFormat::Text => {
            eprintln!("dbhost: error: {}", chain.join(": "));
        }
        OutputFormat::Json => {
            let v = serde_json::json!({"event": "error", "exit_code": code, "error": chain.join(": "), "chain": chain});
            println!("{v}");
        }
    }
}
