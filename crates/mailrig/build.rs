//! The built-in training labs (the repository's `labs/` folder) are embedded with `include_dir!`,
//! which cannot tell cargo on stable Rust which files it read: this makes any change there rebuild.
fn main() {
    println!("cargo:rerun-if-changed=../../labs");
}
