// Group dot-product datapath of the open-flow accelerator: one 32-bit word
// of packed codes per cycle (16 W2, 8 W4 or 4 W8 codes, little end first,
// as eddy_quant packs them) times the matching int8 activations, summed
// exactly into an int32 per group. The f32 group update
// (y += s_g * (scale * acc + min * sum_g)) stays with the caller, which
// keeps the CPU's float operations and order and so bit-exact outputs.
//
// Pipeline (II = 1, no stall): products; four sums of four; the sum of
// the four; accumulate, emitting {header, sum} on a group's last word.
// Split that way so no stage has more than two adder levels after the
// multipliers (timing at >= 50 MHz on ECP5 speed grade 6).
module gdot_mac (
    input wire clk,
    input wire rst,
    input wire in_valid,
    input wire in_last,             // last code word of a group
    input wire [1:0] in_mode,       // 0: W2, 1: W4, 2: W8
    input wire [31:0] in_codes,     // packed codes
    input wire [127:0] in_acts,     // activation of code j in bits [8j +: 8]
    input wire [31:0] in_head,      // group header word (f16 scale, f16 min), passed through
    output reg out_valid,
    output reg [31:0] out_sum,      // exact int32 group sum
    output reg [31:0] out_head
);
  // Unsigned code of lane j in the current mode (0 for unused lanes).
  function [7:0] code_of(input [1:0] mode, input [31:0] w, input integer j);
    begin
      case (mode)
        2'd0: code_of = {6'd0, w[2*j +: 2]};
        2'd1: code_of = (j < 8) ? {4'd0, w[4*j +: 4]} : 8'd0;
        default: code_of = (j < 4) ? w[8*j +: 8] : 8'd0;
      endcase
    end
  endfunction

  reg signed [16:0] prod [0:15];
  reg signed [18:0] quad [0:3];
  reg signed [20:0] part;
  reg signed [31:0] acc;
  reg v1, v2, v3, l1, l2, l3;
  reg [31:0] h1, h2, h3;
  integer j, k;

  always @(posedge clk) begin
    if (rst) begin
      v1 <= 1'b0; v2 <= 1'b0; v3 <= 1'b0;
      l1 <= 1'b0; l2 <= 1'b0; l3 <= 1'b0;
      out_valid <= 1'b0;
      acc <= 32'sd0;
    end else begin
      v1 <= in_valid; l1 <= in_last; h1 <= in_head;
      for (j = 0; j < 16; j = j + 1)
        prod[j] <= $signed({1'b0, code_of(in_mode, in_codes, j)}) * $signed(in_acts[8*j +: 8]);
      v2 <= v1; l2 <= l1; h2 <= h1;
      for (k = 0; k < 4; k = k + 1)
        quad[k] <= prod[4*k] + prod[4*k+1] + prod[4*k+2] + prod[4*k+3];
      v3 <= v2; l3 <= l2; h3 <= h2;
      part <= quad[0] + quad[1] + quad[2] + quad[3];
      out_valid <= v3 && l3;
      if (v3) begin
        if (l3) begin
          out_sum <= acc + {{11{part[20]}}, part};
          out_head <= h3;
          acc <= 32'sd0;
        end else begin
          acc <= acc + {{11{part[20]}}, part};
        end
      end
    end
  end
endmodule
