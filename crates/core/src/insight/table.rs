//! Aligned text tables that fit a terminal width, and CSV.
//!
//! Widths are display columns (`unicode-width`: a CJK character takes two, a
//! combining mark none). When the natural widths do not fit, the widest
//! columns are narrowed first ("water-filling": every column keeps its
//! natural width up to a common cap), and a value cut short ends in `…`.
//! When even the minimum widths do not fit, the trailing columns are left out
//! and the caller is told how many.

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Width used when neither `COLUMNS` nor the terminal says.
pub(crate) const DEFAULT_WIDTH: usize = 120;
/// Spaces between columns.
pub(crate) const GAP: usize = 2;
/// A cut column keeps at least this many display columns (3 + the ellipsis).
pub(crate) const MIN_COL: usize = 4;

/// The width to fit: `COLUMNS` when it is a positive number, else the size
/// of the terminal on stdout, else [`DEFAULT_WIDTH`].
pub(crate) fn terminal_width() -> usize {
    if let Some(w) = std::env::var("COLUMNS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|w| *w > 0)
    {
        return w;
    }
    console::Term::stdout()
        .size_checked()
        .map(|(_, cols)| cols as usize)
        .filter(|w| *w > 0)
        .unwrap_or(DEFAULT_WIDTH)
}

/// One line: control characters (newlines, tabs, …) become spaces.
pub fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Display width of `s`.
pub fn width(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

/// `s` cut to at most `w` display columns, ending in `…` when cut.
/// A rendered table followed by its footer (`foot`, plus a line saying how
/// many columns were left out to fit `width`), every line fitted to `width`.
pub(crate) fn with_footer(r: Rendered, foot: &str, width: usize) -> String {
    let mut s = r.text;
    let mut foot = foot.to_string();
    if r.dropped > 0 {
        foot.push_str(&format!(
            "\n{} column(s) left out to fit {width} columns: widen the terminal or use --format csv",
            r.dropped
        ));
    }
    for l in foot.lines() {
        s.push_str(&fit(l, width));
        s.push('\n');
    }
    s
}

pub(crate) fn fit(s: &str, w: usize) -> String {
    if width(s) <= w {
        return s.to_string();
    }
    if w == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let cw = UnicodeWidthChar::width(c).unwrap_or(0);
        if used + cw > w - 1 {
            break;
        }
        out.push(c);
        used += cw;
    }
    out.push('…');
    out
}

/// Column widths for `natural` widths in `total` display columns (gaps
/// included): `(widths, kept)` where only the first `kept` columns are shown.
pub fn layout(natural: &[usize], total: usize) -> (Vec<usize>, usize) {
    let n = natural.len();
    if n == 0 {
        return (Vec::new(), 0);
    }
    // How many columns fit at their minimum widths.
    let mut kept = 0;
    let mut need = 0;
    for (i, w) in natural.iter().enumerate() {
        let add = (*w).min(MIN_COL) + if i > 0 { GAP } else { 0 };
        if need + add > total && i > 0 {
            break;
        }
        need += add;
        kept = i + 1;
    }
    let nat = &natural[..kept];
    let budget = total.saturating_sub(GAP * (kept - 1));
    if nat.iter().sum::<usize>() <= budget {
        return (nat.to_vec(), kept);
    }
    if kept == 1 {
        return (vec![nat[0].min(budget.max(1))], 1);
    }
    // The largest cap c with sum(min(w, max(c, min(w, MIN_COL)))) <= budget.
    let used = |c: usize| -> usize { nat.iter().map(|w| (*w).min(c.max((*w).min(MIN_COL)))).sum() };
    let (mut lo, mut hi) = (0usize, nat.iter().copied().max().unwrap_or(0));
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if used(mid) <= budget {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let mut widths: Vec<usize> = nat
        .iter()
        .map(|w| (*w).min(lo.max((*w).min(MIN_COL))))
        .collect();
    // Hand out what the cap left over, left to right, to the cut columns.
    let mut left = budget.saturating_sub(widths.iter().sum());
    for (w, n) in widths.iter_mut().zip(nat) {
        if left == 0 {
            break;
        }
        if *w < *n {
            let add = (*n - *w).min(left);
            *w += add;
            left -= add;
        }
    }
    (widths, kept)
}

/// A rendered table and how many trailing columns did not fit.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub text: String,
    pub dropped: usize,
}

/// Renders `headers` and `rows` (already one-line values) as an aligned
/// table no line of which is wider than `total` display columns.
pub fn render(headers: &[String], rows: &[Vec<String>], total: usize) -> Rendered {
    let n = headers.len();
    let mut natural: Vec<usize> = headers.iter().map(|h| width(h)).collect();
    for r in rows {
        for (i, v) in r.iter().enumerate().take(n) {
            natural[i] = natural[i].max(width(v));
        }
    }
    let (widths, kept) = layout(&natural, total);
    let mut text = String::new();
    let mut line = |cells: Vec<String>| {
        let mut l = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i > 0 {
                l.push_str(&" ".repeat(GAP));
            }
            let c = fit(c, *w);
            let pad = w.saturating_sub(width(&c));
            l.push_str(&c);
            l.push_str(&" ".repeat(pad));
        }
        text.push_str(l.trim_end());
        text.push('\n');
    };
    line(headers.iter().take(kept).cloned().collect());
    line(widths.iter().map(|w| "-".repeat(*w)).collect());
    for r in rows {
        line(
            (0..kept)
                .map(|i| r.get(i).cloned().unwrap_or_default())
                .collect(),
        );
    }
    Rendered {
        text,
        dropped: n - kept,
    }
}

/// One CSV field (RFC 4180): quoted when it holds a comma, a quote, a line
/// break or leading/trailing whitespace; quotes doubled.
pub(crate) fn csv_field(s: &str) -> String {
    let needs = s.contains([',', '"', '\n', '\r'])
        || s.starts_with(char::is_whitespace)
        || s.ends_with(char::is_whitespace);
    if needs {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A CSV document: the header row, then one row per record, `\n` line ends.
pub fn csv(headers: &[String], rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    for r in std::iter::once(headers).chain(rows.iter().map(|r| r.as_slice())) {
        let cells: Vec<String> = r.iter().map(|c| csv_field(c)).collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn fit_cuts_with_ellipsis_by_display_width() {
        assert_eq!(fit("hello", 5), "hello");
        assert_eq!(fit("hello world", 6), "hello…");
        assert_eq!(fit("hello", 1), "…");
        assert_eq!(fit("hello", 0), "");
        // Two columns per CJK character: 5 columns hold two of them and the ellipsis.
        let cut = fit("日本語のテキスト", 5);
        assert_eq!(cut, "日本…");
        assert!(width(&cut) <= 5);
    }

    #[test]
    fn layout_keeps_narrow_columns_and_narrows_wide_ones() {
        let (w, kept) = layout(&[6, 40, 8, 100], 60);
        assert_eq!(kept, 4);
        assert_eq!(w.iter().sum::<usize>() + GAP * 3, 60);
        assert_eq!(w[0], 6);
        assert_eq!(w[2], 8);
        assert!(w[1] >= 18 && w[3] >= 18, "{w:?}");
        // Everything fits: natural widths.
        assert_eq!(layout(&[3, 4], 80), (vec![3, 4], 2));
        // Too narrow for every column at its minimum: trailing ones dropped.
        let (w, kept) = layout(&[10, 10, 10, 10], 13);
        assert_eq!(kept, 2);
        assert!(w.iter().sum::<usize>() + GAP <= 13, "{w:?}");
    }

    #[test]
    fn render_fits_every_line() {
        let headers = s(&["Key", "Summary", "Status"]);
        let rows = vec![
            s(&["DEMO-1", &"x".repeat(200), "Open"]),
            s(&["DEMO-22", "short", "In Progress"]),
        ];
        for total in [20, 40, 80, 200] {
            let r = render(&headers, &rows, total);
            for line in r.text.lines() {
                assert!(width(line) <= total, "{total}: {line:?}");
            }
            assert_eq!(r.text.lines().count(), 4);
        }
        let r = render(&headers, &rows, 40);
        assert!(r.text.contains('…'));
        assert!(r.text.lines().nth(2).unwrap().starts_with("DEMO-1 "));
        assert_eq!(r.dropped, 0);
    }

    #[test]
    fn csv_quotes_what_needs_it() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field(" lead"), "\" lead\"");
        assert_eq!(
            csv(&s(&["a", "b"]), &[s(&["1", "x,y"])]),
            "a,b\n1,\"x,y\"\n"
        );
    }

    #[test]
    fn clean_makes_one_line() {
        assert_eq!(clean("a\nb\tc\r"), "a b c ");
    }
}
