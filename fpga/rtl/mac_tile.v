// Hand-written RTL of the matrix-vector unit's integer datapath (not
// generated from the HLS source): PE x SIMD unsigned-code x int8
// multipliers, one adder tree per PE, an int32 accumulator per PE that is
// emitted and cleared at the last step of each group. One beat per cycle
// (II = 1). Used to check the cycle model's MAC term (iterations plus a
// fixed pipeline depth) in RTL simulation, and for relative resource counts
// with yosys.
module mac_tile #(
    parameter PE = 4,
    parameter SIMD = 4
) (
    input wire clk,
    input wire rst,
    input wire in_valid,
    input wire in_last,                    // last step of a group
    input wire [PE*SIMD*8-1:0] codes,      // unpacked codes, 0..255
    input wire [SIMD*8-1:0] acts,          // int8 activations
    output reg out_valid,
    output reg [PE*32-1:0] sums            // int32 group sums
);
  // Stage 1: products.
  reg signed [16:0] prod [0:PE*SIMD-1];
  reg v1, l1;
  // Stage 2: per-PE sums of SIMD products.
  reg signed [31:0] part [0:PE-1];
  reg v2, l2;
  // Stage 3: accumulators.
  reg signed [31:0] acc [0:PE-1];
  integer p, s;
  reg signed [31:0] t;
  always @(posedge clk) begin
    if (rst) begin
      v1 <= 0; v2 <= 0; out_valid <= 0; l1 <= 0; l2 <= 0;
      for (p = 0; p < PE; p = p + 1) acc[p] <= 0;
    end else begin
      v1 <= in_valid;
      l1 <= in_last;
      for (p = 0; p < PE * SIMD; p = p + 1)
        prod[p] <= $signed({1'b0, codes[p*8 +: 8]}) * $signed(acts[(p % SIMD)*8 +: 8]);
      v2 <= v1;
      l2 <= l1;
      for (p = 0; p < PE; p = p + 1) begin
        t = 0;
        for (s = 0; s < SIMD; s = s + 1) t = t + prod[p*SIMD + s];
        part[p] <= t;
      end
      out_valid <= v2 && l2;
      if (v2) begin
        for (p = 0; p < PE; p = p + 1) begin
          if (l2) begin
            sums[p*32 +: 32] <= acc[p] + part[p];
            acc[p] <= 0;
          end else begin
            acc[p] <= acc[p] + part[p];
          end
        end
      end
    end
  end
endmodule
