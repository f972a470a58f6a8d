//! The hostile-bundle corpus (`support::hostile`) against every command that
//! reads a bundle: `inspect`, `verify` and `replay --yes` each refuse every
//! case with exit 3 and one line naming the fault, within a time limit
//! (a watchdog kills a run past 30 s and fails the test) and a memory limit
//! (peak RSS under 256 MiB, from the kernel), and leave the working
//! directory as it was and their TMPDIR empty.

use std::fs;
use std::time::Duration;

use crate::support::Sandbox;
use crate::support::hostile::{self, named};

/// Longest any reader may take on any case before the test fails.
const WATCHDOG: Duration = Duration::from_secs(30);
/// Most memory any reader may hold on any case.
const MAX_RSS_KIB: u64 = 256 << 10;

/// The commands that read a bundle, with what follows the bundle's path.
const READERS: &[&[&str]] = &[&["inspect"], &["verify"], &["replay", "--yes"]];

fn refused_everywhere(bytes: &[u8], needle: &str) {
    let sb = Sandbox::new();
    let bundle = sb.write("hostile.zip", bytes);
    let size = bytes.len() as u64;
    let before = sb.listing();
    for reader in READERS {
        let run = sb
            .bugpack()
            .arg(reader[0])
            .arg("hostile.zip")
            .args(&reader[1..])
            .run_bounded(WATCHDOG);
        assert!(run.peak_rss_kib > 0, "no memory measured for {reader:?}");
        assert!(
            run.peak_rss_kib <= MAX_RSS_KIB,
            "{reader:?} peaked at {} KiB",
            run.peak_rss_kib
        );
        let out = run
            .outcome
            .code(3)
            .one_line_error()
            .stderr_has("hostile.zip rejected")
            .stderr_has(needle);
        assert!(out.stdout.is_empty(), "{reader:?} printed {:?}", out.stdout);
        assert_eq!(sb.listing(), before, "{reader:?} left files behind");
        assert_eq!(
            fs::read_dir(sb.tmp()).unwrap().count(),
            0,
            "{reader:?} left its TMPDIR dirty"
        );
        assert_eq!(fs::metadata(&bundle).unwrap().len(), size);
    }
}

macro_rules! hostile {
    ($($case:ident: $needle:expr;)+) => {
        $(
            #[test]
            fn $case() {
                refused_everywhere(&hostile::$case(), $needle);
            }
        )+
    };
}

hostile! {
    // Traversal, in its many spellings.
    dotdot_slash: "climbs out with `..`";
    dotdot_backslash: "backslash";
    absolute: "it is absolute";
    drive_backslash: "backslash";
    drive_slash: "drive letter";
    unc_path: "backslash";
    dot_then_dotdot: "climbs out with `..`";
    dotdot_inside: "climbs out with `..`";
    dotdot_last: "climbs out with `..`";
    division_slash: "look-alike of `/`";
    fullwidth_solidus: "look-alike of `/`";
    fullwidth_reverse_solidus: "look-alike of `/`";
    nul_in_name: "control character";
    empty_name: "the name is empty";
    overlong_slash: "not UTF-8";
    invalid_utf8_name: "not UTF-8";
    surrogate_name: "not UTF-8";
    too_deep: "nests too deep";
    very_deep: "the name is too long";
    long_component: "component is too long";
    // Entries that are not regular files.
    symlink: "is a symlink";
    symlink_then_file_through_it: "is a symlink";
    char_device: "is a character device";
    block_device: "is a block device";
    fifo: "is a named pipe";
    socket: "is a socket";
    directory_entry: "is a directory";
    directory_entry_with_data: "a directory entry that holds data";
    hard_link: "disagree on name";
    // Names that collide.
    duplicate_names: "appears more than once";
    case_collision: "collide on a case-insensitive file system";
    kelvin_sign_collision: "collide on a case-insensitive file system";
    file_and_directory: "both a file and a directory";
    local_name_differs: "disagree on name";
    // Bombs, sizes and counts.
    overlapping_pair: "overlaps";
    fifield_bomb: "overlaps";
    declared_one_gib: "over the limit of 1073741824";
    expands_past_its_size: "\"logs/zeros.log\" is corrupt";
    hundred_thousand_entries: "34464 entries, over the limit of 10000";
    entry_count_wrapped_small: "do not fit";
    max_classic_entries: "65534 entries, over the limit of 10000";
    zip64: "ZIP64 locator";
    trailing_bytes: "after the zip's end record";
    leading_bytes: "central directory";
    encrypted: "encrypted";
    data_descriptor: "data descriptor disagrees";
    unlisted_entry: "not listed in the manifest";
    listed_traversal: "missing from the zip";
    // Parser ambiguities: two zip tools would see two different archives.
    two_end_records: "2 end-of-central-directory records";
    end_record_in_comment: "the archive comment hides a zip record";
    local_flags_differ: "disagree on flags";
    local_method_differs: "disagree on compression method";
    local_crc_differs: "disagree on CRC-32";
    local_size_differs: "disagree on size";
    descriptor_contradicts: "data descriptor disagrees";
    unicode_path_renames: "Unicode-path field naming it \"scenario/evil.sh\"";
    unicode_path_renames_locally: "Unicode-path field naming it \"scenario/evil.sh\"";
    zip64_field_contradicts: "ZIP64 field gives its size";
    zip64_end_contradicts: "ZIP64 end record's entry count";
    count_too_small: "left in the central directory";
    non_ascii_name_unmarked: "non-ASCII name not marked UTF-8";
    // YAML.
    billion_laughs: "anchor or alias";
    one_anchor_many_aliases: "anchor or alias";
    deeply_nested_flow: "bugpack.yaml";
    deeply_nested_block: "nests deeper than 64 levels";
    manifest_100mb_stored: "over the 1048576-byte limit";
    manifest_100mb_deflated: "over the 1048576-byte limit";
    manifest_invalid_utf8: "is not UTF-8 text";
    manifest_utf16: "is not UTF-8 text";
    manifest_two_documents: "more than one YAML document";
    manifest_with_tags: "breaks its schema";
    scenario_with_aliases: "anchor or alias";
    scenario_deeply_nested: "scenario/scenario.yaml";
    scenario_2mib: "over the 1048576-byte limit";
    // Signatures.
    signature_over_another_manifest: "does not match bugpack.yaml";
    signature_garbage: "not an armored SSH signature";
    signature_huge: "a signature may take";
}

#[test]
fn percent_encoded_dots_are_a_literal_name() {
    // `%2e%2e%2f` is what `../` looks like URL-encoded; in a zip it is just
    // nine characters of a file name, extracted as such inside the bundle.
    let sb = Sandbox::new();
    sb.write("odd.zip", named(b"scenario/%2e%2e%2fpwned.sh"));
    sb.bugpack()
        .args(["verify", "odd.zip"])
        .run()
        .success()
        .stdout_has("intact");
    sb.bugpack()
        .args(["inspect", "odd.zip"])
        .run()
        .success()
        .stdout_has("scenario/%2e%2e%2fpwned.sh");
}
