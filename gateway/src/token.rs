//! `hookroom token new`: a fresh random token for a principals file.

use std::fmt::Write as _;
use std::process::ExitCode;

use hookroom::auth::{MAX_PRINCIPAL_NAME, token_digest};

use crate::cli::{TokenArgs, TokenCommand, TokenNewArgs};

/// Bytes of randomness in a token (256 bits).
const TOKEN_BYTES: usize = 32;

/// Runs `hookroom token …`.
pub(crate) fn run(args: TokenArgs) -> Result<ExitCode, String> {
    match args.command {
        TokenCommand::New(args) => new(&args),
    }
}

/// A fresh token: `hkr_` and 64 hex digits from the system's random source.
pub(crate) fn fresh() -> Result<String, String> {
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| format!("no random source: {e}"))?;
    let mut token = String::with_capacity(4 + 2 * TOKEN_BYTES);
    token.push_str("hkr_");
    for byte in bytes {
        let _ = write!(token, "{byte:02x}");
    }
    Ok(token)
}

fn new(args: &TokenNewArgs) -> Result<ExitCode, String> {
    let name = &args.name;
    if name.is_empty()
        || name.len() > MAX_PRINCIPAL_NAME
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(format!(
            "--name {name:?}: 1 to {MAX_PRINCIPAL_NAME} ASCII letters, digits, '.', '_' or '-'"
        ));
    }
    if let Some(at) = &args.expires_at {
        time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
            .map_err(|e| format!("--expires-at {at:?}: not an RFC 3339 time ({e})"))?;
    }
    let token = fresh()?;
    let digest = token_digest(&token);
    eprintln!("token for {name} (shown once; hand it to the principal and keep it out of logs):");
    println!("{token}");
    eprintln!();
    eprintln!("entry for the principals file (it holds only the token's SHA-256 digest):");
    let mut entry = String::new();
    let _ = writeln!(entry, "[[principal]]");
    let _ = writeln!(entry, "name = {}", toml_string(name));
    let _ = writeln!(entry, "role = \"{}\"", args.role.as_str());
    if !args.rooms.is_empty() {
        let rooms: Vec<String> = args.rooms.iter().map(|r| toml_string(r)).collect();
        let _ = writeln!(entry, "rooms = [{}]", rooms.join(", "));
    }
    if args.payloads {
        let _ = writeln!(entry, "payloads = true");
    }
    if args.reports {
        let _ = writeln!(entry, "reports = true");
    }
    match &args.expires_at {
        Some(at) => {
            let _ = writeln!(
                entry,
                "tokens = [{{ sha256 = \"{digest}\", expires_at = {} }}]",
                toml_string(at)
            );
        }
        None => {
            let _ = writeln!(entry, "tokens = [{{ sha256 = \"{digest}\" }}]");
        }
    }
    eprint!("{entry}");
    eprintln!(
        "\nFor a principal already in the file, add {{ sha256 = \"{digest}\" }} to its tokens \
         (keep the old one until every holder has the new one), then send the gateway SIGHUP."
    );
    Ok(ExitCode::SUCCESS)
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_fresh_and_long() {
        let a = fresh().unwrap();
        let b = fresh().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 4 + 64);
        assert!(a.starts_with("hkr_"));
    }
}
