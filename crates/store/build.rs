// The migrations are embedded at build time (`sqlx::migrate!`); a new file in the folder must
// rebuild the crate, which Cargo does not know without being told.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
