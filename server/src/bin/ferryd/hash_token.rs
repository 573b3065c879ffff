//! `ferryd hash-token`: the line of the `--tokens` file for a token.

use anyhow::Context as _;
use ferry_server::{Rights, check_token_strength, generate_token, token_line};

/// Prints the tokens-file line for the token on standard input, or for a new one.
pub fn hash_token(read_only: bool, folder: Option<&str>, generate: bool) -> anyhow::Result<()> {
    let token = if generate {
        generate_token().context("making a token")?
    } else {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("reading the token from standard input")?;
        let token = line.trim_end_matches(['\r', '\n']).to_owned();
        anyhow::ensure!(
            !token.is_empty(),
            "no token on standard input; `ferryd hash-token --generate` makes one"
        );
        check_token_strength(&token)?;
        token
    };
    let rights = if read_only {
        Rights::ReadOnly
    } else {
        Rights::ReadWrite
    };
    let line = token_line(&token, rights, folder)?;
    if generate {
        eprintln!("# the new token, shown only now; give it to its client (ferry --token):");
        eprintln!("{token}");
    }
    println!("{line}");
    Ok(())
}
