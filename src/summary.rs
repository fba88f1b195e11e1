//! The classic Keras summary table.
//!
//! The layout is the one the notebook prints: 65 columns, column starts at 0, 29 and 55, `=`
//! rules around the rows, `_` rules between them, and the totals without byte sizes. Cells too
//! long for their column wrap onto continuation lines exactly where tf_keras 2.21's
//! `print_summary` wraps them: at the column's width, or earlier just after `),`, `},`, `],` or
//! `',`.

/// A table's width, its columns' ends and their headers.
pub(crate) struct Layout {
    line_length: usize,
    positions: &'static [usize],
    headers: &'static [&'static str],
}

impl Layout {
    /// The Sequential table: Keras's `[0.45, 0.85, 1.0]` of 65.
    pub(crate) const SEQUENTIAL: Layout = Layout {
        line_length: 65,
        positions: &[29, 55, 65],
        headers: &["Layer (type)", "Output Shape", "Param #"],
    };
    /// The Functional table with its `Connected to` column: tf_keras's `[0.3, 0.6, 0.7, 1.0]`
    /// of 98.
    pub(crate) const FUNCTIONAL: Layout = Layout {
        line_length: 98,
        positions: &[29, 58, 68, 98],
        headers: &["Layer (type)", "Output Shape", "Param #", "Connected to"],
    };
}

/// One layer's row: `name (Class)`, its output shape, its parameter count.
pub(crate) struct Row {
    pub(crate) layer: String,
    pub(crate) output_shape: String,
    pub(crate) params: usize,
}

/// The totals under the table.
pub(crate) struct Totals {
    pub(crate) trainable: usize,
    pub(crate) non_trainable: usize,
}

/// The whole Sequential summary text, one `\n` after each line.
pub(crate) fn render(model_name: &str, rows: &[Row], totals: &Totals) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.layer.clone(),
                r.output_shape.clone(),
                r.params.to_string(),
            ]
        })
        .collect();
    render_table(model_name, &Layout::SEQUENTIAL, &cells, totals)
}

/// The whole summary text of a table of `layout`, one `\n` after each line.
pub(crate) fn render_table(
    model_name: &str,
    layout: &Layout,
    rows: &[Vec<String>],
    totals: &Totals,
) -> String {
    let width = layout.line_length;
    let mut out = String::new();
    let mut line = |s: &str| {
        out.push_str(s);
        out.push('\n');
    };
    line(&format!("Model: \"{model_name}\""));
    line(&"_".repeat(width));
    for l in row_lines(layout.positions, layout.headers) {
        line(&l);
    }
    line(&"=".repeat(width));
    for (i, row) in rows.iter().enumerate() {
        let fields: Vec<&str> = row.iter().map(String::as_str).collect();
        for l in row_lines(layout.positions, &fields) {
            line(&l);
        }
        let rule = if i + 1 == rows.len() { "=" } else { "_" };
        line(&rule.repeat(width));
    }
    if rows.is_empty() {
        line(&"=".repeat(width));
    }
    line(&format!(
        "Total params: {}",
        totals.trainable + totals.non_trainable
    ));
    line(&format!("Trainable params: {}", totals.trainable));
    line(&format!("Non-trainable params: {}", totals.non_trainable));
    line(&"_".repeat(width));
    out
}

/// tf_keras's `print_row`, with the row starting at column 0 instead of after a space.
fn row_lines(positions: &[usize], fields: &[&str]) -> Vec<String> {
    const BREAKS: [&str; 4] = ["),", "},", "],", "',"];
    let mut left: Vec<Vec<char>> = fields.iter().map(|f| f.chars().collect()).collect();
    let mut lines = Vec::new();
    while left.iter().any(|f| !f.is_empty()) {
        let mut line = String::new();
        for (col, field) in left.iter_mut().enumerate() {
            let start = if col > 0 { positions[col - 1] } else { 0 };
            let end = positions[col];
            let last = col == positions.len() - 1;
            // tf_keras leaves two spaces between columns, and one more that its leading space
            // takes; the wrap points stay tf_keras's.
            let mut cutoff = if last { end - start } else { end - start - 3 };
            let fit: String = field.iter().take(cutoff).collect();
            if let Some(c) = BREAKS
                .iter()
                .filter_map(|b| fit.find(b).map(|i| fit[..i].chars().count() + b.len()))
                .min()
            {
                cutoff = c;
            }
            let cut = cutoff.min(field.len());
            line.extend(field.drain(..cut));
            if !last {
                line.push_str("  ");
            }
            let width = line.chars().count();
            line.extend(std::iter::repeat_n(' ', end.saturating_sub(width)));
        }
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_columns_start_at_29_and_55() {
        let l = &row_lines(
            Layout::SEQUENTIAL.positions,
            &["Layer (type)", "Output Shape", "Param #"],
        )[0];
        assert_eq!(
            l,
            "Layer (type)                 Output Shape              Param #   "
        );
        assert_eq!(l.find("Output").unwrap(), 29);
        assert_eq!(l.find("Param").unwrap(), 55);
    }

    #[test]
    fn long_names_wrap_at_tf_keras_points() {
        let lines = row_lines(
            Layout::SEQUENTIAL.positions,
            &["bidirectional_1 (Bidirectional)", "(None, 10, 16)", "208"],
        );
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("bidirectional_1 (Bidirecti   (None, 10, 16)"));
        assert_eq!(lines[1].trim_end(), "onal)");
        assert!(lines.iter().all(|l| l.chars().count() == 65));
    }

    #[test]
    fn tuples_break_after_their_comma() {
        let lines = row_lines(
            Layout::SEQUENTIAL.positions,
            &["x (X)", "[(None, 4), (None, 3)]", "0"],
        );
        assert_eq!(
            lines[0][29..].trim_end().split("  ").next().unwrap(),
            "[(None, 4),"
        );
        // tf_keras keeps the space after the comma on the continuation line.
        assert_eq!(lines[1][29..].trim_end(), " (None, 3)]");
    }
}
