//! Numbers in large type (three rows of block characters), for the
//! violations count. Hand-rolled: a 10-glyph font is smaller than a crate.

const GLYPHS: [[&str; 3]; 10] = [
    ["█▀█", "█ █", "█▄█"],
    ["▀█ ", " █ ", "▄█▄"],
    ["▀▀█", "█▀▀", "█▄▄"],
    ["▀▀█", " ▀█", "▄▄█"],
    ["█ █", "▀▀█", "  █"],
    ["█▀▀", "▀▀█", "▄▄█"],
    ["█▀▀", "█▀█", "█▄█"],
    ["▀▀█", "  █", "  █"],
    ["█▀█", "█▀█", "█▄█"],
    ["█▀█", "▀▀█", "▄▄█"],
];

/// The three rows of `n` in large digits.
pub fn render(n: u64) -> [String; 3] {
    let digits = n.to_string();
    let mut rows: [String; 3] = Default::default();
    for (i, d) in digits.bytes().enumerate() {
        for (r, row) in rows.iter_mut().enumerate() {
            if i > 0 {
                row.push(' ');
            }
            row.push_str(GLYPHS[usize::from(d - b'0')][r]);
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    #[test]
    fn digits_are_three_rows_of_equal_width() {
        let r = super::render(120);
        assert_eq!(r[0], "▀█  ▀▀█ █▀█");
        assert_eq!(r[2], "▄█▄ █▄▄ █▄█");
        assert!(r.iter().all(|l| l.chars().count() == 11));
    }
}
