//! AFL target: a line of `rows import` (a row that round-trips, or an error).
fn main() {
    afl::fuzz!(|data: &[u8]| {
        if let Ok(line) = std::str::from_utf8(data)
            && let Ok(row) = cronusfs::meta::rowjson::from_json_line(line)
        {
            let again = cronusfs::meta::rowjson::to_json_line(&row);
            assert_eq!(
                cronusfs::meta::rowjson::from_json_line(&again).ok(),
                Some(row)
            );
        }
    });
}
