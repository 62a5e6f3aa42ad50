// The formulations of each geometry and direction, built once and kept for the process, the choice
// between them (chooser.h) and the saved choices of earlier processes; Execute() runs a convolution.
#pragma once

#include <cstdint>

#include "formulation.h"
#include "geometry.h"

namespace vzconv {

// Runs the convolution of g on user buffers (plain layouts) in0, in1 -> out, with the geometry's chosen
// formulation (choosing it in this call when it has none). Returns 0, or 2 (oneDNN not loaded or no
// stream), 3 (no formulation could be built), 4 (the run failed).
int Execute(const Geometry &g, void *in0, void *in1, void *out, const void *bias = nullptr);

// -1: choose (default); 0-5: always that candidate (tests and measurements); where it does not exist for
// a geometry: the same layout unsplit, else the blocked one, else the plain one. Returns the previous one.
int ForceCandidate(int candidate);
// Calls that have run candidate i in this process (-1 for an i out of range).
int64_t CandidateRuns(int i);
// Bit i set when candidate i of g is built; -1 when nothing could be built.
int BuiltCandidates(const Geometry &g);
// The candidate g keeps (-1: still choosing, or nothing could be built).
int ChosenCandidate(const Geometry &g);
// How g's choice was made (chooser.h's Decision as an int), -1 when nothing could be built.
int ChoiceDecision(const Geometry &g);
// How many geometries and directions have started timing and not finished.
int TuningPending();

// Saved choices: a row is Geometry::kFields numbers then the candidate (Geometry::kRowLength in all).
// PresetChoice makes a geometry built later start with that candidate (ignored where it cannot be built);
// returns 0, or 1 for a candidate out of range.
int PresetChoice(const int64_t *row);
// Forgets the presets; returns how many there were.
int ClearPresets();
// Writes up to max_rows rows of the choices this process has (chosen or preset); returns how many exist.
int Choices(int64_t *rows, int max_rows);

}  // namespace vzconv
