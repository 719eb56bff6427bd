package decode

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strings"
)

// LoadDict reads a PaddleOCR recognition dictionary (one symbol per line, UTF-8) and returns
// the model's full class list as PaddleOCR's CTCLabelDecode builds it: index 0 is the CTC
// blank (""), then the dictionary lines in order, then " " when useSpace
// (use_space_char: true, the default for PP-OCRv4 rec). ppocr_keys_v1.txt has 6623 lines, so
// the list has 6625 entries, matching the rec model's output [1, T, 6625].
// Line ends (\n or \r\n) are removed but other whitespace is kept: a dictionary may contain a
// space symbol.
func LoadDict(r io.Reader, useSpace bool) ([]string, error) {
	dict := []string{""}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSuffix(sc.Text(), "\r")
		if s == "" {
			return nil, fmt.Errorf("dictionary line %d is empty", line)
		}
		dict = append(dict, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read dictionary: %w", err)
	}
	if line == 0 {
		return nil, fmt.Errorf("dictionary is empty")
	}
	if useSpace {
		dict = append(dict, " ")
	}
	return dict, nil
}

// CTCGreedy is greedy (best path) CTC decoding of a recognition output of T time steps over C
// classes (probs row-major [T, C], already softmax-ed as PP-OCR rec exports are): argmax per
// step, collapse consecutive repeats, drop the blank. dict maps class index to symbol and
// must have exactly C entries (see LoadDict); blank is the blank's index (0 for PaddleOCR).
// "A A - A" (blank between) decodes to "AA"; "A A A" to "A".
//
// charConf holds one confidence per emitted symbol: the probability at the first step of its
// run, as PaddleOCR reports it. meanConf is their mean (0 for empty text).
func CTCGreedy(probs []float32, T, C int, dict []string, blank int) (text string, charConf []float32, meanConf float32, err error) {
	if T < 0 || C <= 0 || T > math.MaxInt32/C || len(probs) != T*C {
		return "", nil, 0, fmt.Errorf("ctc: %d values for T=%d C=%d: %w", len(probs), T, C, ErrShape)
	}
	if len(dict) != C {
		return "", nil, 0, fmt.Errorf("ctc: dictionary has %d symbols (blank included) for %d classes: %w", len(dict), C, ErrShape)
	}
	if blank < 0 || blank >= C {
		return "", nil, 0, fmt.Errorf("ctc: blank index %d outside [0,%d): %w", blank, C, ErrShape)
	}
	var sb strings.Builder
	prev := -1
	sum := 0.0
	for t := 0; t < T; t++ {
		row := probs[t*C : (t+1)*C]
		best, bestV := 0, float32(math.Inf(-1))
		for c, v := range row {
			if v > bestV {
				best, bestV = c, v
			}
		}
		if best != prev && best != blank {
			sb.WriteString(dict[best])
			charConf = append(charConf, bestV)
			sum += float64(bestV)
		}
		prev = best
	}
	if len(charConf) > 0 {
		meanConf = float32(sum / float64(len(charConf)))
	}
	return sb.String(), charConf, meanConf, nil
}

// CTCOutput is CTCGreedy over a rec model output tensor of shape [1, T, C] or [T, C].
func CTCOutput(out []float32, shape []int64, dict []string, blank int) (text string, charConf []float32, meanConf float32, err error) {
	s, err := squeezeBatch("ctc", shape, 2)
	if err != nil {
		return "", nil, 0, err
	}
	if err := checkLen("ctc", out, shape); err != nil {
		return "", nil, 0, err
	}
	return CTCGreedy(out, int(s[0]), int(s[1]), dict, blank)
}

// PlateRead is one plate read by a fixed-slot OCR model.
type PlateRead struct {
	Text     string
	CharConf []float32 // one per character of Text
	Conf     float32   // mean of CharConf, 0 for empty text
}

// FastPlateOCR decodes fast-plate-ocr output [B, slots, len(alphabet)] (cct_xs_v1_global:
// [B, 9, 37] over "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_"): argmax per slot, pad symbol
// removed wherever it appears, per-character confidence = the slot's probability. Slots whose
// scores are not a probability distribution (a logits export) go through Softmax first.
// The alphabet must be single-byte (ASCII) symbols, as the fast-plate-ocr configs are.
func FastPlateOCR(out []float32, shape []int64, alphabet string, pad byte) ([]PlateRead, error) {
	if len(shape) != 3 {
		return nil, fmt.Errorf("fast-plate-ocr: shape %v, want [B, slots, alphabet]: %w", shape, ErrShape)
	}
	if err := checkLen("fast-plate-ocr", out, shape); err != nil {
		return nil, err
	}
	b, slots, a := int(shape[0]), int(shape[1]), int(shape[2])
	if a != len(alphabet) || a == 0 {
		return nil, fmt.Errorf("fast-plate-ocr: %d classes per slot for an alphabet of %d: %w", a, len(alphabet), ErrShape)
	}
	reads := make([]PlateRead, b)
	for i := range reads {
		var sb strings.Builder
		var conf []float32
		sum := 0.0
		for s := 0; s < slots; s++ {
			row := out[(i*slots+s)*a : (i*slots+s+1)*a]
			if !looksLikeProbabilities(row) {
				row = Softmax(row)
			}
			best, bestV := 0, float32(math.Inf(-1))
			for c, v := range row {
				if v > bestV {
					best, bestV = c, v
				}
			}
			if alphabet[best] == pad {
				continue
			}
			sb.WriteByte(alphabet[best])
			conf = append(conf, bestV)
			sum += float64(bestV)
		}
		reads[i] = PlateRead{Text: sb.String(), CharConf: conf}
		if len(conf) > 0 {
			reads[i].Conf = float32(sum / float64(len(conf)))
		}
	}
	return reads, nil
}
