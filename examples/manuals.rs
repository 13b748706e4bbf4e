//! Writes the man pages and the shell completions of both binaries, made
//! from their clap definitions (so they cannot drift from `--help`), into
//! OUT_DIR: `rx-repack.1`, `rx-listen.1`, and `completions/` for bash,
//! zsh and fish. The Debian package takes them from there
//! (`tools/deb.sh`).
//!
//! Usage: cargo run --release --example manuals -- OUT_DIR

use std::path::Path;

use clap::CommandFactory;
use clap_complete::Shell;

use rx_repack::listener::cli::ListenCli;
use rx_repack::repacker::cli::RepackCli;

fn main() -> std::io::Result<()> {
    let out = std::env::args().nth(1).expect("usage: manuals OUT_DIR");
    let out = Path::new(&out);
    let completions = out.join("completions");
    std::fs::create_dir_all(&completions)?;
    for mut command in [RepackCli::command(), ListenCli::command()] {
        let name = command.get_name().to_string();
        let mut page = Vec::new();
        clap_mangen::Man::new(command.clone()).render(&mut page)?;
        std::fs::write(out.join(format!("{name}.1")), page)?;
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            clap_complete::generate_to(shell, &mut command, &name, &completions)?;
        }
    }
    Ok(())
}
